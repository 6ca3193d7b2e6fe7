// The key's recent jobs (GET /v1/jobs), each reopenable.
import { html } from './html.js';
import { statusLabel } from './job.js';
import { taskInfo } from './tasks.js';

function ago(iso) {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function History({ jobs, error, current, onOpen, onRefresh }) {
  return html`<section class="card history" aria-labelledby="history-title">
    <div class="card-head">
      <h2 id="history-title">History</h2>
      <button type="button" class="ghost small" onClick=${onRefresh}>Refresh</button>
    </div>
    ${error && html`<p class="error-text" role="alert">${error}</p>`}
    ${jobs.length === 0 && !error && html`<p class="muted small">Your jobs will be listed here.</p>`}
    <ol class="history-list">
      ${jobs.map((job) => html`<li key=${job.id}>
        <button type="button" class=${`history-item${current === job.id ? ' current' : ''}`}
          aria-current=${current === job.id ? 'true' : undefined} onClick=${() => onOpen(job)}>
          <span class="history-thumb">${job.outputs.length && job.outputs[0].kind !== 'mesh'
            ? html`<img class=${taskInfo(job.task).transparent ? 'checker' : undefined}
              src=${job.outputs[0].poster_url || job.outputs[0].url} alt="" loading="lazy" />`
            : html`<span aria-hidden="true">${taskInfo(job.task).label[0]}</span>`}</span>
          <span class="history-text">
            <strong>${taskInfo(job.task).label}</strong>
            <span class="muted small">${ago(job.created_at)}${job.n > 1 ? ` · ${job.n} images` : ''}</span>
          </span>
          <span class=${`badge status-${job.status}`}>${statusLabel(job.status)}</span>
        </button>
      </li>`)}
    </ol>
  </section>`;
}
