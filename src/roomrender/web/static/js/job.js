// The viewer's result side: live progress with cancel, then the results (a before/after slider,
// download, "use as input"), or the error the API gave.
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { isTerminal } from './api.js';
import { taskInfo } from './tasks.js';

const STATUS = { queued: 'Queued', running: 'Rendering', succeeded: 'Done', failed: 'Failed',
  canceled: 'Canceled' };

export const statusLabel = (status) => STATUS[status] || status;

function duration(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  return `${Math.round(seconds / 60)} min`;
}

function detail(job) {
  const parts = [];
  if (job.status === 'queued' && job.queue_position) parts.push(`#${job.queue_position} in the queue`);
  if (job.eta_seconds != null && !isTerminal(job)) parts.push(`about ${duration(job.eta_seconds)} left`);
  return parts.join(' · ');
}

// The job's title, status, progress bar and cancel button, the same in every state.
function StatusStrip({ job, onCancel }) {
  const [canceling, setCanceling] = useState(false);
  useEffect(() => setCanceling(false), [job.id]);
  const cancel = async () => {
    setCanceling(true);
    await onCancel(job);
  };
  const waiting = job.status === 'queued';
  return html`<div class="strip">
    <div class="strip-head">
      <h2>${taskInfo(job.task).label}</h2>
      <span class=${`badge status-${job.status}`}>${statusLabel(job.status)}</span>
      <span class="muted small" aria-live="polite">${detail(job)}</span>
      <span class="spacer"></span>
      ${!isTerminal(job) && html`<button type="button" class="secondary small" onClick=${cancel}
        disabled=${canceling}>${canceling ? 'Canceling…' : 'Cancel job'}</button>`}
    </div>
    <div class="strip-bar">
      <div class=${`bar bar-${job.status}`} role="progressbar" aria-label="Progress"
        aria-valuemin="0" aria-valuemax="100" aria-valuenow=${job.progress}>
        <div class=${`bar-fill${waiting ? ' waiting' : ''}`}
          style=${`width:${waiting ? 100 : job.progress}%`}></div>
      </div>
      <span class="percent">${job.progress}%</span>
    </div>
  </div>`;
}

function fileName(job, index, output) {
  const extension = (output.content_type.split('/')[1] || 'png').replace('jpeg', 'jpg');
  return `roomrender-${job.task}-${job.id}-${index + 1}.${extension}`;
}

// A transparent result (a cutout) lies on a checkerboard, so what is transparent shows as such.
function Compare({ before, output, transparent }) {
  const [broken, setBroken] = useState(false);
  useEffect(() => setBroken(false), [before && before.url]);
  const aspect = output.width / output.height;
  const same = before && !broken && before.width
    && Math.abs(before.width / before.height - aspect) < 0.02;
  const fit = `max-width:min(100%, calc(var(--view-height) * ${aspect.toFixed(4)}))`;
  const after = transparent ? 'checker' : undefined;
  if (!same) {
    return html`<div class="compare" style=${fit}>
      <img class=${`result-image${transparent ? ' checker' : ''}`} src=${output.url} alt="Result"
        width=${output.width}
        height=${output.height} />
    </div>`;
  }
  return html`<div class="compare" style=${fit}>
    <img-comparison-slider class="slider" value="50" aria-label="Before and after: move to compare">
      <img slot="first" src=${before.url} alt="Before" width=${output.width} height=${output.height}
        onError=${() => setBroken(true)} />
      <img slot="second" class=${after} src=${output.url} alt="After" width=${output.width}
        height=${output.height} />
      <span slot="handle" class="handle" aria-hidden="true">
        <svg viewBox="0 0 24 24"><path d="M9 6l-6 6 6 6M15 6l6 6-6 6" /></svg>
      </span>
    </img-comparison-slider>
    <span class="corner left" aria-hidden="true">Before</span>
    <span class="corner right" aria-hidden="true">After</span>
  </div>`;
}

// A video result (a room tour) plays in the page, its poster shown until it does.
function Clip({ output }) {
  const fit = `max-width:min(100%, calc(var(--view-height) * ${(output.width / output.height).toFixed(4)}))`;
  return html`<div class="compare" style=${fit}>
    <video class="result-video" src=${output.url} poster=${output.poster_url} width=${output.width}
      height=${output.height} controls playsinline preload="metadata" aria-label="Result video"></video>
  </div>`;
}

// A 3D model (GLB) turns under the mouse, a finger or the arrow keys in <model-viewer>, loaded
// the first time one is shown (a 1 MB script most visits never need).
let modelViewer = null;
function MeshView({ output }) {
  const [ready, setReady] = useState(Boolean(customElements.get('model-viewer')));
  useEffect(() => {
    if (ready) return;
    modelViewer = modelViewer || import('../vendor/model-viewer.min.js');
    modelViewer.then(() => setReady(true));
  }, [ready]);
  return html`<div class="compare mesh">
    ${ready && html`<model-viewer src=${output.url} alt="The 3D model" camera-controls
      touch-action="pan-y" shadow-intensity="1" exposure="1"></model-viewer>`}
  </div>`;
}

function Results({ job, before, onReuse }) {
  const [index, setIndex] = useState(0);
  useEffect(() => setIndex(0), [job.id]);
  const output = job.outputs[Math.min(index, job.outputs.length - 1)];
  const transparent = Boolean(taskInfo(job.task).transparent);
  const mesh = output.kind === 'mesh';
  return html`<div class="results">
    ${output.kind === 'video' ? html`<${Clip} output=${output} />`
      : mesh ? html`<${MeshView} output=${output} />`
      : html`<${Compare} before=${before} output=${output} transparent=${transparent} />`}
    <div class="result-bar">
      ${job.outputs.length > 1 && html`<div class="result-thumbs" role="group" aria-label="Results">
        ${job.outputs.map((o, i) => html`<button type="button" key=${o.url} aria-pressed=${i === index}
          aria-label=${`Result ${i + 1}`} onClick=${() => setIndex(i)}>
          <img class=${transparent ? 'checker' : undefined} src=${o.url} alt="" /></button>`)}
      </div>`}
      <span class="muted small">${mesh ? '3D model (GLB)' : `${output.width} × ${output.height}`}${output.kind === 'video'
        ? ` · ${output.duration_seconds.toFixed(1)} s · ${output.fps} fps` : ''}</span>
      <span class="spacer"></span>
      <a class="button secondary" href=${output.url} download=${fileName(job, index, output)}>Download</a>
      ${output.kind === 'image' && html`<button type="button" class="primary"
        onClick=${() => onReuse(output, job)}>Use as input</button>`}
    </div>
  </div>`;
}

export function JobPanel({ job, before, followError, onCancel, onReuse }) {
  if (!job) {
    return html`<div class="empty">
      <p><strong>Results appear here.</strong></p>
      <p class="muted">Choose a photo and a task, then press Generate.</p>
    </div>`;
  }
  let body;
  if (!isTerminal(job)) {
    body = html`<div class="pending">
      ${before ? html`<img class="pending-image" src=${before.url} alt="" />`
        : html`<div class="pending-blank"></div>`}
      <div class="spinner" aria-hidden="true"></div>
    </div>`;
  } else if (job.status === 'succeeded') {
    body = html`<${Results} job=${job} before=${before} onReuse=${onReuse} />`;
  } else {
    body = html`<div class=${`notice ${job.status === 'failed' ? 'danger' : 'neutral'}`} role="alert">
      <strong>${job.status === 'failed' ? 'The job failed' : 'The job was canceled'}</strong>
      <p>${job.error ? job.error.message : statusLabel(job.status)}</p>
      ${job.error && html`<p class="small">code <code>${job.error.code}</code></p>`}
    </div>`;
  }
  return html`<div class="job">
    <${StatusStrip} job=${job} onCancel=${onCancel} />
    ${followError && html`<p class="error-text" role="alert">${followError}</p>`}
    ${body}
    <p class="muted small job-id">job <code>${job.id}</code></p>
  </div>`;
}
