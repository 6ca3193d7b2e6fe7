// What each task asks for: its label, one line about it, and its controls. The server's catalog
// says which tasks exist and which this engine runs; a task missing here still gets the basics.
export const TASKS = {
  restyle: { label: 'Restyle', blurb: 'The same room in another style',
    controls: ['style', 'room_type', 'prompt', 'strength', 'n', 'seed'] },
  stage: { label: 'Virtual staging', blurb: 'Furnish an empty room',
    controls: ['style', 'room_type', 'prompt', 'n', 'seed'] },
  empty_room: { label: 'Empty room', blurb: 'Take the furniture out', controls: ['n', 'seed'] },
  edit: { label: 'Edit an area', blurb: 'Change or remove what you paint',
    controls: ['mask', 'remove', 'prompt', 'n', 'seed'], mask: 'required' },
  recolor: { label: 'Recolor', blurb: 'Walls, floor, ceiling or a painted area',
    controls: ['color', 'area', 'mask', 'n', 'seed'], mask: 'optional' },
  upscale: { label: 'Upscale', blurb: 'Enlarge two, four or eight times', controls: ['scale'] },
  expand: { label: 'Expand', blurb: 'Extend the picture past its edges',
    controls: ['expand', 'prompt', 'seed'] },
  sketch_render: { label: 'Sketch to render', blurb: 'A photo-real room from a drawing',
    controls: ['style', 'room_type', 'prompt', 'strength', 'n', 'seed'] },
  style_transfer: { label: 'Style transfer', blurb: 'Borrow the look of another photo',
    controls: ['reference', 'prompt', 'strength', 'n', 'seed'] },
  segment: { label: 'Segment', blurb: 'Label walls, floor and furniture', controls: [] },
  cutout: { label: 'Cut out', blurb: 'The subject on a transparent background', controls: [],
    transparent: true },
  place: { label: 'Place a product', blurb: 'Put a product photo into the room',
    controls: ['product', 'boxes', 'prompt', 'seed'] },
  text_to_image: { label: 'Text to image', blurb: 'A room from words alone', noImage: true,
    controls: ['prompt', 'style', 'room_type', 'n', 'seed'] },
};

export function taskInfo(id) {
  return TASKS[id] || { label: id.replace(/_/g, ' '), blurb: '', controls: ['prompt', 'n', 'seed'] };
}

export function unsupportedReason(engine) {
  return engine === 'preview'
    ? 'Needs the diffusers engine; this server runs the preview engine (no AI).'
    : `Not run by this server's engine (${engine}).`;
}

export const DEFAULTS = {
  style: 'modern', room_type: '', prompt: '', strength: 0.55, n: 1, seed: '',
  color: '#a3b18a', area: 'wall', remove: true, scale: 2,
  left: 25, right: 25, top: 0, bottom: 0,
};

export const needsMask = (id, params) => {
  const mask = taskInfo(id).mask;
  return mask === 'required' || (mask === 'optional' && params.area === 'mask');
};

// The job's JSON body, from the task, the controls and the already-uploaded references.
export function jobBody(id, params, refs) {
  const has = (control) => taskInfo(id).controls.includes(control);
  const body = { task: id };
  if (!taskInfo(id).noImage) body.image = refs.image;
  if (has('style') && params.style) body.style = params.style;
  if (has('room_type') && params.room_type) body.room_type = params.room_type;
  if (has('prompt') && params.prompt.trim() && !(has('remove') && params.remove)) {
    body.prompt = params.prompt.trim();
  }
  if (has('strength')) body.strength = Number(params.strength);
  if (has('n')) body.n = Number(params.n) || 1;
  if (has('seed') && String(params.seed).trim() !== '') body.seed = Number(params.seed);
  if (has('color')) body.color = params.color;
  if (has('area') && params.area !== 'mask') body.area = params.area;
  if (has('remove')) body.remove = Boolean(params.remove);
  if (has('scale')) body.scale = Number(params.scale);
  if (has('expand')) {
    body.expand = Object.fromEntries(
      ['left', 'right', 'top', 'bottom'].map((side) => [side, Number(params[side]) / 100]));
  }
  if (has('reference')) body.reference_image = refs.reference;
  if (has('product')) body.product_image = refs.product;
  if (has('boxes') && refs.boxes) {
    body.placement = refs.boxes.placement;
    if (refs.boxes.area) body.area = refs.boxes.area;
  }
  if (refs.mask) body.mask = refs.mask;
  return body;
}
