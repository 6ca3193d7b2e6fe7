// What a task takes, what it returns and whether this server's engine runs it come from the
// server (GET /v1/tasks: `spec` below). Here: only how the playground shows a task (its label),
// and how it turns its controls into a job's body.

// Labels by task name, in the order the tiles are shown; a task missing here still shows.
const LOOKS = {
  restyle: { label: 'Restyle' },
  stage: { label: 'Virtual staging' },
  empty_room: { label: 'Empty room' },
  edit: { label: 'Edit an area' },
  recolor: { label: 'Recolor' },
  upscale: { label: 'Upscale' },
  expand: { label: 'Expand' },
  sketch_render: { label: 'Sketch to render' },
  style_transfer: { label: 'Style transfer' },
  instruct: { label: 'Instruct' },
  segment: { label: 'Segment' },
  cutout: { label: 'Cut out', transparent: true },
  place: { label: 'Place a product' },
  text_to_image: { label: 'Text to image' },
};

export function taskInfo(name) {
  return LOOKS[name] || { label: name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ') };
}

export function byLook(a, b) {
  const names = Object.keys(LOOKS);
  const rank = (spec) => (names.includes(spec.name) ? names.indexOf(spec.name) : names.length);
  return rank(a) - rank(b);
}

export function unsupportedReason(engine) {
  return engine === 'preview'
    ? 'Needs the diffusers engine; this server runs the preview engine (no AI).'
    : `Not run by this server's engine (${engine}).`;
}

// The options and inputs this server's engine honours for the task.
export function offered(spec) {
  const ignored = new Set(spec.ignored_options);
  return new Set([...spec.inputs.map((input) => input.name), ...Object.keys(spec.options)]
    .filter((name) => !ignored.has(name)));
}

// A boolean option that is the only offered way to meet one of the task's requirements is
// always on (an edit on an engine that can only erase: remove).
export function alwaysOn(spec) {
  const offer = offered(spec);
  const on = new Set();
  for (const rule of spec.requires) {
    const left = rule.any_of.filter((name) => offer.has(name));
    if (left.length === 1 && (spec.options[left[0]] || {}).type === 'boolean') on.add(left[0]);
  }
  return on;
}

const required = (spec, name) => spec.inputs.some((input) => input.name === name && input.required);

export const needsPhoto = (spec) => offered(spec).has('image');

export const needsMask = (spec, params) => offered(spec).has('mask')
  && (required(spec, 'mask') || params.area === 'mask');

// The controls the playground draws itself; any other offered option gets a field from its
// JSON schema (see MoreOptions).
export const DRAWN = new Set(['image', 'mask', 'reference_image', 'product_image', 'placement',
  'remove', 'color', 'area', 'style', 'room_type', 'prompt', 'scale', 'expand', 'strength', 'n',
  'seed', 'extra_images']);

export const DEFAULTS = {
  style: 'modern', room_type: '', prompt: '', strength: 0.55, n: 1, seed: '',
  color: '#a3b18a', area: 'wall', remove: true, scale: 2,
  left: 25, right: 25, top: 0, bottom: 0,
};

// A schema's non-null alternative (`anyOf: [X, null]` → X).
export function plain(schema) {
  const branches = (schema.anyOf || [schema]).filter((branch) => branch.type !== 'null');
  return branches[0] || {};
}

function schemaValue(schema, raw) {
  const type = plain(schema).type;
  if (type === 'boolean') return raw ? true : undefined;
  if (raw === undefined || raw === null || String(raw).trim() === '') return undefined;
  if (type === 'integer' || type === 'number') return Number(raw);
  if (type === 'array') return String(raw).split(',').map((item) => item.trim()).filter(Boolean);
  return String(raw).trim();
}

// The job's JSON body, from the task, the controls and the already-uploaded references.
export function jobBody(spec, params, refs) {
  const offer = offered(spec);
  const on = alwaysOn(spec);
  const removing = on.has('remove') || (offer.has('remove') && params.remove);
  const body = { task: spec.name };
  if (offer.has('image')) body.image = refs.image;
  if (offer.has('style') && params.style) body.style = params.style;
  if (offer.has('room_type') && params.room_type) body.room_type = params.room_type;
  if (offer.has('prompt') && params.prompt.trim() && !removing) body.prompt = params.prompt.trim();
  if (offer.has('strength')) body.strength = Number(params.strength);
  if (offer.has('n')) body.n = Number(params.n) || 1;
  if (offer.has('seed') && String(params.seed).trim() !== '') body.seed = Number(params.seed);
  if (offer.has('color')) body.color = params.color;
  if (offer.has('area') && !offer.has('placement') && params.area !== 'mask') body.area = params.area;
  if (offer.has('remove')) body.remove = Boolean(removing);
  if (offer.has('scale')) body.scale = Number(params.scale);
  if (offer.has('expand')) {
    body.expand = Object.fromEntries(
      ['left', 'right', 'top', 'bottom'].map((side) => [side, Number(params[side]) / 100]));
  }
  if (offer.has('reference_image') && refs.reference) body.reference_image = refs.reference;
  if (offer.has('product_image')) body.product_image = refs.product;
  if (offer.has('placement') && refs.boxes) {
    body.placement = refs.boxes.placement;
    if (refs.boxes.area) body.area = refs.boxes.area;
  }
  if (refs.mask) body.mask = refs.mask;
  for (const name of offer) {
    if (DRAWN.has(name)) continue;
    const value = schemaValue(spec.options[name] || {}, params[name]);
    if (value !== undefined) body[name] = value;
  }
  return body;
}

const MB = 1024 * 1024;
export const megabytes = (bytes) => `${Number((bytes / MB).toFixed(1))} MB`;

// Why the server would refuse this file as an input image, before it is sent; '' when it would not.
export function fileProblem(file, limits) {
  if (!limits) return '';
  if (file.type && !limits.content_types.includes(file.type)) {
    return `${file.name || 'This file'} is not a JPEG, PNG or WebP image.`;
  }
  if (file.size > limits.max_bytes) {
    return `${file.name || 'This image'} is ${megabytes(file.size)}; the server takes at most `
      + `${megabytes(limits.max_bytes)}.`;
  }
  return '';
}
