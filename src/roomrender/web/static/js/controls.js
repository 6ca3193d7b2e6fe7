// The task picker (the tasks this server runs), each task's own controls, and the tasks it
// does not run. Which options a task shows comes from its spec (GET /v1/tasks).
import { html } from './html.js';
import { PhotoPicker } from './photo.js';
import { alwaysOn, byLook, DRAWN, offered, plain, taskInfo, unsupportedReason } from './tasks.js';

const COLORS = ['#a3b18a', '#e9e4d8', '#c8553d', '#3d5a80', '#2b2d42', '#f2cc8f'];
const AREA_LABELS = { wall: 'Walls', floor: 'Floor', ceiling: 'Ceiling' };

export function TaskPicker({ catalog, task, onTask }) {
  const runs = catalog.tasks.filter((t) => t.runs_here).sort(byLook);
  return html`<fieldset class="tasks">
    <legend class="visually-hidden">Task</legend>
    <div class="task-grid">
      ${runs.map((t) => html`<label class="task-option" key=${t.name}>
        <input type="radio" name="task" value=${t.name} checked=${task === t.name}
          onChange=${() => onTask(t.name)} />
        <span class="task-name">${taskInfo(t.name).label}</span>
        <span class="task-blurb">${t.summary}</span>
      </label>`)}
    </div>
  </fieldset>`;
}

// The tasks this server's engine does not run, greyed, below the chosen task's options.
export function UnavailableTasks({ catalog }) {
  const others = catalog.tasks.filter((t) => !t.runs_here).sort(byLook);
  if (others.length === 0) return null;
  const reason = unsupportedReason(catalog.engine);
  return html`<section class="step unavailable" aria-labelledby="step-unavailable">
    <h2 id="step-unavailable">Not on this server</h2>
    <p class="unsupported-note" id="unsupported-reason">${reason}</p>
    <div class="task-grid unsupported">
      ${others.map((t) => html`<label class="task-option disabled" key=${t.name} title=${t.summary}>
        <input type="radio" name="unavailable-task" value=${t.name} disabled
          aria-describedby="unsupported-reason" />
        <span class="task-name">${taskInfo(t.name).label}</span>
      </label>`)}
    </div>
  </section>`;
}

function Field({ label, id, hint, option, children }) {
  return html`<div class="field" data-option=${option}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<p class="hint">${hint}</p>`}
  </div>`;
}

function StylePicker({ styles, value, onChange }) {
  return html`<fieldset class="field styles" data-option="style">
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

function Segmented({ legend, name, option, options, value, onChange }) {
  return html`<fieldset class="field" data-option=${option}>
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

export function TaskControls({ spec, params, set, catalog, refused, reference, onReference,
  product, onProduct }) {
  const offer = offered(spec);
  const on = alwaysOn(spec);
  const has = (name) => offer.has(name);
  const value = (name) => (event) => set(name, event.currentTarget.value);
  const rooms = catalog.room_types;
  const removing = on.has('remove') || (has('remove') && params.remove);
  const mask = spec.inputs.find((input) => input.name === 'mask');
  const maskRequired = has('mask') && mask.required;
  const areas = has('area') && !has('placement')
    ? [...(plain(spec.options.area).enum || []).map((id) => [id, AREA_LABELS[id] || id]),
      ...(has('mask') ? [['mask', 'Painted area']] : [])] : [];
  const more = [...offer].filter((name) => !DRAWN.has(name) && spec.options[name]);
  const shown = [...offer].filter((name) => name !== 'image' && (name !== 'mask' || maskRequired
    || params.area === 'mask'));
  return html`<div class="controls">
    ${has('reference_image') && html`<div class="field" data-option="reference_image">
      <span class="label">Reference photo</span>
      <${PhotoPicker} id="reference-file" what="a reference photo" input=${reference}
        limits=${catalog.limits} refused=${refused.reference}
        onFile=${(file) => onReference(file)} onUrl=${(url) => onReference(url)} />
    </div>`}
    ${has('product_image') && html`<div class="field" data-option="product_image">
      <span class="label">Product photo</span>
      <${PhotoPicker} id="product-file" what="a product photo" input=${product}
        limits=${catalog.limits} refused=${refused.product}
        onFile=${(file) => onProduct(file)} onUrl=${(url) => onProduct(url)} />
      <p class="hint">Best on a plain background: the product is cut out of it.</p>
    </div>`}
    ${has('placement') && html`<p class="hint box-hint" data-option="placement">Drag the
      <strong>Product</strong> box on the photo to where it goes, its corners to size it. Only the
      <strong>May change</strong> box may change (by default, a quarter of the product's size
      around it).</p>`}
    ${shown.length === 0 && html`<p class="muted small">Nothing to set for this task.</p>`}
    ${has('mask') && html`<p class="hint mask-hint" data-option="mask">${maskRequired || params.area === 'mask'
      ? 'Paint the area on the photo with the brush.' : 'Or choose “Painted area” to paint exactly where.'}</p>`}
    ${has('remove') && html`<label class="check" data-option="remove">
      <input type="checkbox" checked=${removing} disabled=${on.has('remove')}
        onChange=${(e) => set('remove', e.currentTarget.checked)} />
      <span>Remove what I paint <span class="muted">(fill it from its surroundings)</span></span>
    </label>
    ${on.has('remove') && html`<p class="hint">This server's engine can only remove what you paint.</p>`}`}
    ${has('color') && html`<div class="field" data-option="color">
      <label for="color">Colour</label>
      <div class="color-row">
        <input id="color" type="color" value=${params.color} onInput=${value('color')} />
        <code>${params.color.toUpperCase()}</code>
        ${COLORS.map((c) => html`<button type="button" class="color-chip" key=${c}
          style=${`background:${c}`} aria-label=${`Use colour ${c}`}
          aria-pressed=${params.color === c} onClick=${() => set('color', c)}></button>`)}
      </div>
    </div>`}
    ${areas.length > 0 && html`<${Segmented} legend="Where" name="area" option="area" options=${areas}
      value=${params.area} onChange=${(v) => set('area', v)} />`}
    ${has('style') && html`<${StylePicker} styles=${catalog.styles} value=${params.style}
      onChange=${(v) => set('style', v)} />`}
    ${has('room_type') && html`<${Field} label="Room type" id="room-type" option="room_type">
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
    ${has('prompt') && html`<${Field} label=${spec.name === 'edit' ? 'What to put there' : 'Prompt'}
      id="prompt" option="prompt"
      hint=${removing ? 'Not used while removing.'
        : required(spec, 'prompt') ? 'What to make, in plain words.' : 'Optional: details to add, in plain words.'}>
      <textarea id="prompt" rows="2" maxlength="2000" disabled=${removing}
        placeholder=${PLACEHOLDERS[spec.name] || 'warm light, oak floor, linen curtains'}
        value=${params.prompt} onInput=${value('prompt')}></textarea>
    <//>`}
    ${has('scale') && html`<${Segmented} legend="Scale" name="scale" option="scale"
      options=${[[2, '2×'], [4, '4×'], [8, '8×']]} value=${params.scale}
      onChange=${(v) => set('scale', Number(v))} />`}
    ${has('expand') && html`<fieldset class="field" data-option="expand">
      <legend>Margins to add <span class="muted">(% of the width or height)</span></legend>
      <div class="margins">
        ${['top', 'left', 'right', 'bottom'].map((side) => html`<label class=${`margin ${side}`} key=${side}>
          <span>${side[0].toUpperCase() + side.slice(1)}</span>
          <input type="number" min="0" max="200" step="5" value=${params[side]} onInput=${value(side)} />
        </label>`)}
      </div>
    </fieldset>`}
    ${has('strength') && html`<${Field} label=${html`Strength <output>${Number(params.strength).toFixed(2)}</output>`}
      id="strength" option="strength" hint="How far the result may move from the photo.">
      <input id="strength" type="range" min="0" max="1" step="0.05" value=${params.strength}
        onInput=${value('strength')} />
    <//>`}
    ${(has('n') || has('seed')) && html`<div class="row">
      ${has('n') && html`<${Field} label="Images" id="n" option="n">
        <input id="n" type="number" min="1" max="8" value=${params.n} onInput=${value('n')} />
      <//>`}
      ${has('seed') && html`<${Field} label="Seed" id="seed" option="seed">
        <div class="seed-row">
          <input id="seed" type="number" min="0" max="4294967295" placeholder="random"
            value=${params.seed} onInput=${value('seed')} />
          <button type="button" class="ghost" title="A new random seed"
            onClick=${() => set('seed', String(Math.floor(Math.random() * 2 ** 31)))}>Roll</button>
        </div>
      <//>`}
    </div>`}
    ${more.length > 0 && html`<details class="more-options">
      <summary>More options</summary>
      ${more.map((name) => html`<${SchemaField} key=${name} name=${name} schema=${spec.options[name]}
        value=${params[name]} set=${set} />`)}
    </details>`}
  </div>`;
}

const required = (spec, name) => spec.requires.some((rule) => rule.any_of.length === 1
  && rule.any_of[0] === name);

const titled = (name) => name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ');

// A field for an option the playground has no control of its own for, from its JSON schema.
function SchemaField({ name, schema, value, set }) {
  const kind = plain(schema);
  const id = `option-${name}`;
  const choices = kind.enum || (kind.const !== undefined ? [kind.const] : null);
  if (kind.type === 'boolean') {
    return html`<label class="check" data-option=${name}>
      <input id=${id} type="checkbox" checked=${Boolean(value)}
        onChange=${(e) => set(name, e.currentTarget.checked)} /><span>${titled(name)}</span>
    </label>`;
  }
  const onInput = (event) => set(name, event.currentTarget.value);
  let input;
  if (choices) {
    input = html`<select id=${id} value=${value ?? ''} onChange=${onInput}>
      <option value="">${schema.default == null ? 'None' : `Default (${schema.default})`}</option>
      ${choices.map((choice) => html`<option value=${choice} key=${choice}>${choice}</option>`)}
    </select>`;
  } else if (kind.type === 'integer' || kind.type === 'number') {
    input = html`<input id=${id} type="number" min=${kind.minimum} max=${kind.maximum}
      step=${kind.type === 'integer' ? 1 : 'any'} placeholder="default" value=${value ?? ''}
      onInput=${onInput} />`;
  } else {
    input = html`<input id=${id} type="text" maxlength=${kind.maxLength}
      placeholder=${kind.type === 'array' ? 'comma-separated' : ''} value=${value ?? ''}
      onInput=${onInput} />`;
  }
  return html`<${Field} label=${titled(name)} id=${id} option=${name}>${input}<//>`;
}
