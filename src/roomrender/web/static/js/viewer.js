// The big view: the photo (with the mask brush when the task paints one) or the job's result.
import { html } from './html.js';
import { isTerminal } from './api.js';
import { BoxBar, BoxLayer } from './boxes.js';
import { JobPanel } from './job.js';
import { MaskCanvas, clearMask } from './mask.js';

const TABS = [['photo', 'Photo'], ['result', 'Result']];

function Tabs({ view, setView, busy }) {
  const key = (event) => {
    if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) return;
    event.preventDefault();
    const next = view === 'photo' ? 'result' : 'photo';
    setView(event.key === 'Home' ? 'photo' : event.key === 'End' ? 'result' : next);
    document.getElementById(`tab-${next}`)?.focus();
  };
  return html`<div class="tabs" role="tablist" aria-label="View">
    ${TABS.map(([id, label]) => html`<button type="button" role="tab" id=${`tab-${id}`} key=${id}
      aria-selected=${view === id} aria-controls=${`panel-${id}`} tabindex=${view === id ? 0 : -1}
      onClick=${() => setView(id)} onKeyDown=${key}>
      ${label}${id === 'result' && busy ? html`<span class="pulse" aria-hidden="true"></span>` : ''}
    </button>`)}
  </div>`;
}

function BrushBar({ brush, setBrush, erasing, setErasing, canvasRef, onPainted }) {
  return html`<div class="brush-bar" role="toolbar" aria-label="Mask brush">
    <label class="brush-size">Brush
      <input type="range" min="4" max="160" value=${brush}
        onInput=${(e) => setBrush(Number(e.currentTarget.value))} />
    </label>
    <button type="button" class="ghost" aria-pressed=${erasing}
      onClick=${() => setErasing(!erasing)}>${erasing ? 'Erasing' : 'Eraser'}</button>
    <button type="button" class="ghost"
      onClick=${() => { clearMask(canvasRef.current); onPainted(false); }}>Clear mask</button>
  </div>`;
}

function PhotoView({ input, noImage, masking, mask, onDimensions, placing, boxes, onBoxes }) {
  if (noImage) {
    return html`<div class="empty"><p><strong>No photo needed.</strong></p>
      <p class="muted">This task starts from the prompt alone.</p></div>`;
  }
  if (!input) {
    return html`<div class="empty"><p><strong>Start with a room photo.</strong></p>
      <p class="muted">Drop it here, paste it (Ctrl+V), or choose one on the left.</p></div>`;
  }
  const aspect = input.width && input.height ? input.width / input.height : 4 / 3;
  return html`<div class="photo-stage">
    ${masking && html`<${BrushBar} ...${mask} />`}
    ${placing && boxes && html`<${BoxBar} width=${input.width} height=${input.height} boxes=${boxes}
      onChange=${onBoxes} />`}
    <div class=${`canvas-wrap${masking ? ' masking' : ''}${placing ? ' placing' : ''}`}
      style=${`max-width:min(100%, calc(var(--view-height) * ${aspect.toFixed(4)}))`}>
      <img src=${input.preview} alt="Your photo" onLoad=${(e) => onDimensions(e.currentTarget)} />
      ${masking && input.width && html`<${MaskCanvas} key=${input.preview} width=${input.width}
        height=${input.height} brush=${mask.brush} erasing=${mask.erasing}
        canvasRef=${mask.canvasRef} onPainted=${mask.onPainted} />`}
      ${placing && boxes && html`<${BoxLayer} width=${input.width} height=${input.height}
        boxes=${boxes} onChange=${onBoxes} />`}
    </div>
    ${masking && html`<p class="hint center">${mask.painted
      ? 'Painted. Press Generate, or keep painting.'
      : 'Paint over what should change: drag with the mouse, a pen or a finger.'}</p>`}
    ${placing && html`<p class="hint center" id="box-keys">Drag a box to move it, a corner to resize
      it. Keys: arrows move the selected box, Shift+arrows resize it.</p>`}
  </div>`;
}

export function Viewer(props) {
  const { view, setView, job, onDrop } = props;
  return html`<section class="card viewer" id="viewer" aria-label="Viewer"
    onDragOver=${(e) => e.preventDefault()} onDrop=${onDrop}>
    <${Tabs} view=${view} setView=${setView} busy=${job && !isTerminal(job)} />
    <div role="tabpanel" id="panel-photo" aria-labelledby="tab-photo" hidden=${view !== 'photo'}>
      <${PhotoView} ...${props} />
    </div>
    <div role="tabpanel" id="panel-result" aria-labelledby="tab-result" hidden=${view !== 'result'}>
      <${JobPanel} job=${job} before=${props.before} followError=${props.followError}
        onCancel=${props.onCancel} onReuse=${props.onReuse} />
    </div>
  </section>`;
}
