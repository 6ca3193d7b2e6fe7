// The boxes of `place` over the room photo: "Product" (the placement) and "May change" (the area),
// in whole pixels of the original photo, origin top-left, as the API takes them. Each moves by
// dragging it (mouse, pen or finger) or by the arrow keys, and resizes by its corners or by
// Shift+arrows. The area always holds the product: moving the product grows a chosen area, and
// the area stops at the product's edges. Until the area is moved it is the server's default
// (the product and a quarter of its size around it) and is not sent.
import { useRef } from 'preact/hooks';
import { html } from './html.js';

export const MIN_SIDE = 8; // the server's smallest placement (canonical/boxes.py)
const AREA_MARGIN = 0.25; // the server's default area margin (canonical/boxes.py)
const CORNERS = ['nw', 'ne', 'sw', 'se'];
const LABELS = { placement: 'Product', area: 'May change' };

const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

// Python's round() (halves to even), so the default area drawn is the one the server computes.
function roundHalfEven(value) {
  const rounded = Math.round(value);
  return value % 1 === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

export function defaultArea(placement, width, height) {
  const dx = roundHalfEven(placement.w * AREA_MARGIN);
  const dy = roundHalfEven(placement.h * AREA_MARGIN);
  const left = Math.max(0, placement.x - dx);
  const top = Math.max(0, placement.y - dy);
  const right = Math.min(width, placement.x + placement.w + dx);
  const bottom = Math.min(height, placement.y + placement.h + dy);
  return { x: left, y: top, w: Math.max(1, right - left), h: Math.max(1, bottom - top) };
}

// Where a product starts: centred, standing low in the picture, where a floor usually is.
export function initialBoxes(width, height) {
  const w = clamp(Math.round(width * 0.3), Math.min(MIN_SIDE, width), width);
  const h = clamp(Math.round(height * 0.4), Math.min(MIN_SIDE, height), height);
  const x = Math.round((width - w) / 2);
  const y = clamp(height - h - Math.round(height * 0.1), 0, height - h);
  return { placement: { x, y, w, h }, area: null };
}

export const areaOf = (boxes, width, height) => boxes.area || defaultArea(boxes.placement, width, height);

function union(a, b) {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

// The box moved by (dx, dy), or resized by moving the edges a handle names ('nw', 'e', ...).
// `limits` gives each edge's range: [low, high] for left, top, right, bottom.
function reshape(box, op, dx, dy, limits) {
  const { left, top, right, bottom } = limits;
  if (op === 'move') {
    return { ...box, x: clamp(box.x + dx, left[0], left[1]), y: clamp(box.y + dy, top[0], top[1]) };
  }
  let l = box.x;
  let t = box.y;
  let r = box.x + box.w;
  let b = box.y + box.h;
  if (op.includes('w')) l = clamp(l + dx, left[0], left[1]);
  if (op.includes('e')) r = clamp(r + dx, right[0], right[1]);
  if (op.includes('n')) t = clamp(t + dy, top[0], top[1]);
  if (op.includes('s')) b = clamp(b + dy, bottom[0], bottom[1]);
  return { x: l, y: t, w: r - l, h: b - t };
}

// The boxes after moving or resizing one of them by (dx, dy) photo pixels.
export function reshaped(boxes, which, op, dx, dy, width, height) {
  const p = boxes.placement;
  if (which === 'placement') {
    const limits = op === 'move'
      ? { left: [0, width - p.w], top: [0, height - p.h] }
      : { left: [0, p.x + p.w - MIN_SIDE], right: [p.x + MIN_SIDE, width],
        top: [0, p.y + p.h - MIN_SIDE], bottom: [p.y + MIN_SIDE, height] };
    const placement = reshape(p, op, dx, dy, limits);
    return { placement, area: boxes.area && union(boxes.area, placement) };
  }
  const a = areaOf(boxes, width, height);
  const limits = op === 'move'
    ? { left: [Math.max(0, p.x + p.w - a.w), Math.min(width - a.w, p.x)],
      top: [Math.max(0, p.y + p.h - a.h), Math.min(height - a.h, p.y)] }
    : { left: [0, p.x], right: [p.x + p.w, width], top: [0, p.y], bottom: [p.y + p.h, height] };
  return { placement: p, area: reshape(a, op, dx, dy, limits) };
}

// Arrow keys: a step of 1% of the photo (at least a pixel); Shift moves the right or bottom edge.
function keyed(boxes, which, event, width, height) {
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  const arrow = arrows[event.key];
  if (!arrow || event.altKey || event.ctrlKey || event.metaKey) return null;
  const dx = arrow[0] * Math.max(1, Math.round(width / 100));
  const dy = arrow[1] * Math.max(1, Math.round(height / 100));
  const op = !event.shiftKey ? 'move' : dx ? 'e' : 's';
  return reshaped(boxes, which, op, dx, dy, width, height);
}

export const describe = (box) => `x ${box.x}, y ${box.y}, ${box.w} × ${box.h} px`;

function percent(box, width, height) {
  return `left:${(box.x / width) * 100}%;top:${(box.y / height) * 100}%;`
    + `width:${(box.w / width) * 100}%;height:${(box.h / height) * 100}%`;
}

// The two boxes, drawn over the photo (the parent is positioned and photo-shaped).
export function BoxLayer({ width, height, boxes, onChange }) {
  const layer = useRef(null);
  const drag = useRef(null);

  const start = (which, op) => (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    event.currentTarget.setPointerCapture(event.pointerId);
    event.currentTarget.closest('.box').focus({ preventScroll: true });
    const rect = layer.current.getBoundingClientRect();
    drag.current = { which, op, id: event.pointerId, x: event.clientX, y: event.clientY,
      sx: width / rect.width, sy: height / rect.height, from: boxes };
  };
  const move = (event) => {
    const d = drag.current;
    if (!d || d.id !== event.pointerId) return;
    const dx = Math.round((event.clientX - d.x) * d.sx);
    const dy = Math.round((event.clientY - d.y) * d.sy);
    onChange(reshaped(d.from, d.which, d.op, dx, dy, width, height));
  };
  const end = (event) => {
    if (drag.current && drag.current.id === event.pointerId) drag.current = null;
  };
  const key = (which) => (event) => {
    const next = keyed(boxes, which, event, width, height);
    if (!next) return;
    event.preventDefault();
    onChange(next);
  };

  const box = (which, shape) => html`<div key=${which}
    class=${`box box-${which}${which === 'area' && !boxes.area ? ' default' : ''}`}
    style=${percent(shape, width, height)} tabindex="0" role="group" aria-roledescription="box"
    aria-label=${LABELS[which]} aria-describedby=${`${which}-box box-keys`}
    onPointerDown=${start(which, 'move')} onKeyDown=${key(which)}>
    <span class="box-tag" aria-hidden="true">${LABELS[which]}</span>
    ${CORNERS.map((corner) => html`<span key=${corner} class=${`box-handle ${corner}`}
      aria-hidden="true" onPointerDown=${start(which, corner)}></span>`)}
  </div>`;

  return html`<div ref=${layer} class="box-layer" onPointerMove=${move} onPointerUp=${end}
    onPointerCancel=${end} onLostPointerCapture=${end}>
    ${box('placement', boxes.placement)}
    ${box('area', areaOf(boxes, width, height))}
  </div>`;
}

// What the boxes are, in photo pixels, with a way back to the default area.
export function BoxBar({ width, height, boxes, onChange }) {
  return html`<div class="box-bar" role="group" aria-label="Boxes, in pixels of the photo"
    aria-live="polite">
    <span class="box-read"><span class="box-key placement" aria-hidden="true"></span>
      Product <code id="placement-box">${describe(boxes.placement)}</code></span>
    <span class="box-read"><span class="box-key area" aria-hidden="true"></span>
      May change <code id="area-box">${describe(areaOf(boxes, width, height))}</code>
      ${boxes.area ? html`<button type="button" class="link small"
        onClick=${() => onChange({ ...boxes, area: null })}>Reset</button>`
        : html`<span class="muted small">(default)</span>`}</span>
  </div>`;
}
