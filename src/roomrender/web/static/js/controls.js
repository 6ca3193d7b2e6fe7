// The task picker and each task's own controls.
import { html } from './html.js';
import { PhotoPicker } from './photo.js';
import { TASKS, taskInfo, unsupportedReason } from './tasks.js';

const ORDER = Object.keys(TASKS);
const COLORS = ['#a3b18a', '#e9e4d8', '#c8553d', '#3d5a80', '#2b2d42', '#f2cc8f'];
const AREAS = [['wall', 'Walls'], ['floor', 'Floor'], ['ceiling', 'Ceiling'], ['mask', 'Painted area']];

function byOrder(a, b) {
  const rank = (task) => (ORDER.includes(task.id) ? ORDER.indexOf(task.id) : ORDER.length);
  return rank(a) - rank(b);
}

export function TaskPicker({ catalog, task, onTask }) {
  const tasks = [...catalog.tasks].sort(byOrder);
  const runs = tasks.filter((t) => t.supported);
  const others = tasks.filter((t) => !t.supported);
  const reason = unsupportedReason(catalog.engine);
  return html`<fieldset class="tasks">
    <legend class="visually-hidden">Task</legend>
    <div class="task-grid">
      ${runs.map((t) => html`<label class="task-option" key=${t.id}>
        <input type="radio" name="task" value=${t.id} checked=${task === t.id}
          onChange=${() => onTask(t.id)} />
        <span class="task-name">${taskInfo(t.id).label}</span>
        <span class="task-blurb">${taskInfo(t.id).blurb}</span>
      </label>`)}
    </div>
    ${others.length > 0 && html`<p class="unsupported-note" id="unsupported-reason">${reason}</p>
    <div class="task-grid unsupported">
      ${others.map((t) => html`<label class="task-option disabled" key=${t.id} title=${reason}>
        <input type="radio" name="task" value=${t.id} disabled aria-describedby="unsupported-reason" />
        <span class="task-name">${taskInfo(t.id).label}</span>
      </label>`)}
    </div>`}
  </fieldset>`;
}

function Field({ label, id, hint, children }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<p class="hint">${hint}</p>`}
  </div>`;
}

function StylePicker({ styles, value, onChange }) {
  return html`<fieldset class="field styles">
    <legend>Style</legend>
    <div class="swatches">
      ${styles.map((style) => html`<label class="swatch" key=${style.id} title=${style.description}>
        <input type="radio" name="style" value=${style.id} checked=${value === style.id}
          onChange=${() => onChange(style.id)} />
        <img src=${`v2/swatches/styles/${encodeURIComponent(style.id)}.png?size=96`} alt=""
          width="48" height="48" loading="lazy" />
        <span>${style.name}</span>
      </label>`)}
    </div>
  </fieldset>`;
}

function Segmented({ legend, name, options, value, onChange }) {
  return html`<fieldset class="field">
    <legend>${legend}</legend>
    <div class="segmented">
      ${options.map(([id, label]) => html`<label key=${id}>
        <input type="radio" name=${name} value=${id} checked=${String(value) === String(id)}
          onChange=${() => onChange(id)} /><span>${label}</span>
      </label>`)}
    </div>
  </fieldset>`;
}

const PLACEHOLDERS = { edit: 'a green velvet armchair', place: 'on the rug, soft afternoon light' };

export function TaskControls({ task, params, set, catalog, reference, onReference, product,
  onProduct }) {
  const info = taskInfo(task);
  const has = (control) => info.controls.includes(control);
  const value = (name) => (event) => set(name, event.currentTarget.value);
  const rooms = catalog.room_types;
  const removing = has('remove') && params.remove;
  return html`<div class="controls">
    ${has('reference') && html`<div class="field">
      <span class="label">Reference photo</span>
      <${PhotoPicker} id="reference-file" what="a reference photo" input=${reference}
        onFile=${(file) => onReference(file)} onUrl=${(url) => onReference(url)} />
    </div>`}
    ${has('product') && html`<div class="field">
      <span class="label">Product photo</span>
      <${PhotoPicker} id="product-file" what="a product photo" input=${product}
        onFile=${(file) => onProduct(file)} onUrl=${(url) => onProduct(url)} />
      <p class="hint">Best on a plain background: the product is cut out of it.</p>
    </div>`}
    ${has('boxes') && html`<p class="hint box-hint">Drag the <strong>Product</strong> box on the photo
      to where it goes, its corners to size it. Only the <strong>May change</strong> box may
      change (by default, a quarter of the product's size around it).</p>`}
    ${info.controls.length === 0 && html`<p class="muted small">Nothing to set for this task.</p>`}
    ${has('mask') && html`<p class="hint mask-hint">${info.mask === 'required' || params.area === 'mask'
      ? 'Paint the area on the photo with the brush.' : 'Or choose “Painted area” to paint exactly where.'}</p>`}
    ${has('remove') && html`<label class="check">
      <input type="checkbox" checked=${params.remove}
        onChange=${(e) => set('remove', e.currentTarget.checked)} />
      <span>Remove what I paint <span class="muted">(fill it from its surroundings)</span></span>
    </label>`}
    ${has('color') && html`<div class="field">
      <label for="color">Colour</label>
      <div class="color-row">
        <input id="color" type="color" value=${params.color} onInput=${value('color')} />
        <code>${params.color.toUpperCase()}</code>
        ${COLORS.map((c) => html`<button type="button" class="color-chip" key=${c}
          style=${`background:${c}`} aria-label=${`Use colour ${c}`}
          aria-pressed=${params.color === c} onClick=${() => set('color', c)}></button>`)}
      </div>
    </div>`}
    ${has('area') && html`<${Segmented} legend="Where" name="area" options=${AREAS}
      value=${params.area} onChange=${(v) => set('area', v)} />`}
    ${has('style') && html`<${StylePicker} styles=${catalog.styles} value=${params.style}
      onChange=${(v) => set('style', v)} />`}
    ${has('room_type') && html`<${Field} label="Room type" id="room-type">
      <select id="room-type" value=${params.room_type} onChange=${value('room_type')}>
        <option value="">Any room</option>
        <optgroup label="Interior">
          ${rooms.filter((r) => !r.exterior).map((r) => html`<option value=${r.id} key=${r.id}>${r.name}</option>`)}
        </optgroup>
        <optgroup label="Exterior">
          ${rooms.filter((r) => r.exterior).map((r) => html`<option value=${r.id} key=${r.id}>${r.name}</option>`)}
        </optgroup>
      </select>
    <//>`}
    ${has('prompt') && html`<${Field} label=${task === 'edit' ? 'What to put there' : 'Prompt'} id="prompt"
      hint=${removing ? 'Not used while removing.' : 'Optional: details to add, in plain words.'}>
      <textarea id="prompt" rows="2" maxlength="2000" disabled=${removing}
        placeholder=${PLACEHOLDERS[task] || 'warm light, oak floor, linen curtains'}
        value=${params.prompt} onInput=${value('prompt')}></textarea>
    <//>`}
    ${has('scale') && html`<${Segmented} legend="Scale" name="scale"
      options=${[[2, '2×'], [4, '4×'], [8, '8×']]} value=${params.scale}
      onChange=${(v) => set('scale', Number(v))} />`}
    ${has('expand') && html`<fieldset class="field">
      <legend>Margins to add <span class="muted">(% of the width or height)</span></legend>
      <div class="margins">
        ${['top', 'left', 'right', 'bottom'].map((side) => html`<label class=${`margin ${side}`} key=${side}>
          <span>${side[0].toUpperCase() + side.slice(1)}</span>
          <input type="number" min="0" max="200" step="5" value=${params[side]} onInput=${value(side)} />
        </label>`)}
      </div>
    </fieldset>`}
    ${has('strength') && html`<${Field} label=${html`Strength <output>${Number(params.strength).toFixed(2)}</output>`}
      id="strength" hint="How far the result may move from the photo.">
      <input id="strength" type="range" min="0" max="1" step="0.05" value=${params.strength}
        onInput=${value('strength')} />
    <//>`}
    ${(has('n') || has('seed')) && html`<div class="row">
      ${has('n') && html`<${Field} label="Images" id="n">
        <input id="n" type="number" min="1" max="8" value=${params.n} onInput=${value('n')} />
      <//>`}
      ${has('seed') && html`<${Field} label="Seed" id="seed">
        <div class="seed-row">
          <input id="seed" type="number" min="0" max="4294967295" placeholder="random"
            value=${params.seed} onInput=${value('seed')} />
          <button type="button" class="ghost" title="A new random seed"
            onClick=${() => set('seed', String(Math.floor(Math.random() * 2 ** 31)))}>Roll</button>
        </div>
      <//>`}
    </div>`}
  </div>`;
}
