// The playground: key, photo, task and options on the left; photo or result in the middle;
// the key's history on the right (below on narrow screens).
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api, isTerminal, loadCatalog } from './api.js';
import { initialBoxes } from './boxes.js';
import { TaskControls, TaskPicker, UnavailableTasks } from './controls.js';
import { History } from './history.js';
import { html } from './html.js';
import { KeyForm } from './key.js';
import { maskBlob } from './mask.js';
import { PhotoPicker } from './photo.js';
import { forgetKey, inputOf, rememberInput, saveKey, savedKey } from './storage.js';
import {
  byLook, DEFAULTS, fileProblem, jobBody, needsMask, needsPhoto, offered, taskInfo,
} from './tasks.js';
import { Viewer } from './viewer.js';

const HISTORY_SIZE = 15;

function Brand() {
  return html`<a class="brand" href="./">
    <svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7"/>
      <path d="M7 25V14l9-7 9 7v11h-6v-7h-6v7z"/></svg>
    <span>roomrender</span><span class="brand-sub">playground</span>
  </a>`;
}

function credits(account) {
  const available = account.credits && account.credits.available;
  return available == null ? 'unlimited credits' : `${available} credit${available === 1 ? '' : 's'}`;
}

function Header({ catalog, account, onChangeKey }) {
  return html`<header class="topbar">
    <${Brand} />
    ${catalog && html`<span class="engine" title="The engine this server runs">
      engine: <strong>${catalog.engine}</strong></span>`}
    <span class="spacer"></span>
    ${account && html`<span class="account" title=${`Key ${account.name}`}>
      <code>${account.prefix}…</code> · ${credits(account)}</span>`}
    ${onChangeKey && html`<button type="button" class="ghost small" onClick=${onChangeKey}>Change key</button>`}
    <a class="button ghost small" href="docs">API docs</a>
  </header>`;
}

const firstTask = (catalog) => {
  const tasks = [...catalog.tasks].sort(byLook);
  return (tasks.find((t) => t.runs_here) || tasks[0]).name;
};
const inputRequired = (spec, name) => spec.inputs.some((input) => input.name === name && input.required);
const URL_UNREADABLE = 'This image URL could not be loaded: check that it is public and is a JPEG, '
  + 'PNG or WebP image.';

function Workspace({ api, catalog, account, onUnauthorized, onAccount }) {
  const [input, setInput] = useState(null);
  const [reference, setReference] = useState(null);
  const [product, setProduct] = useState(null);
  const [boxes, setBoxes] = useState(null);
  const [task, setTask] = useState(() => firstTask(catalog));
  const [params, setParams] = useState(DEFAULTS);
  const [view, setView] = useState('photo');
  const [job, setJob] = useState(null);
  const [before, setBefore] = useState(null);
  const [busy, setBusy] = useState(false);
  const [submitError, setSubmitError] = useState('');
  const [followError, setFollowError] = useState('');
  const [jobs, setJobs] = useState([]);
  const [historyError, setHistoryError] = useState('');
  const [brush, setBrush] = useState(40);
  const [erasing, setErasing] = useState(false);
  const [painted, setPainted] = useState(false);
  // A file refused before upload (type or size), by picker.
  const [refused, setRefused] = useState({});
  const canvasRef = useRef(null);
  const following = useRef(null);
  const reveal = useRef(false);
  const info = taskInfo(task);
  const spec = catalog.tasks.find((t) => t.name === task);
  const offer = offered(spec);
  const noImage = !needsPhoto(spec);
  const masking = needsMask(spec, params) && !noImage;
  const placing = offer.has('placement') && !noImage;
  // The boxes belong to one photo: a new photo (or size) starts from the default boxes.
  const photoKey = input && input.width ? `${input.preview} ${input.width}x${input.height}` : null;
  const placed = photoKey && (boxes && boxes.photo === photoKey ? boxes
    : { ...initialBoxes(input.width, input.height), photo: photoKey });
  const setPlaced = (next) => setBoxes({ placement: next.placement, area: next.area, photo: photoKey });

  const explain = (error) => {
    if (error.status === 401) onUnauthorized(error);
    return error.message;
  };

  const refreshHistory = () => api.get(`v1/jobs?limit=${HISTORY_SIZE}`)
    .then((page) => { setJobs(page.data); setHistoryError(''); })
    .catch((error) => setHistoryError(explain(error)));
  const refreshAccount = () => api.get('v1/account').then(onAccount).catch(() => {});

  useEffect(() => {
    refreshHistory();
    return () => following.current && following.current.abort();
  }, [api]);

  // An image from a file (checked, then uploaded at once, so problems show before Generate) or
  // from a URL (loaded here at once, so one that cannot be read says so).
  const choose = async (setter, source, slot) => {
    setSubmitError('');
    setRefused((current) => ({ ...current, [slot]: '' }));
    if (typeof source === 'string') {
      setter({ preview: source, ref: source, url: source, name: source, status: 'ready' });
      const probe = new Image();
      probe.onerror = () => setter((current) => (current && current.preview === source
        ? { ...current, status: 'error', error: URL_UNREADABLE } : current));
      probe.src = source;
      return;
    }
    const problem = fileProblem(source, catalog.limits);
    if (problem) {
      setRefused((current) => ({ ...current, [slot]: problem }));
      return;
    }
    const preview = URL.createObjectURL(source);
    const name = source.name || 'pasted image';
    setter({ preview, name, status: 'uploading' });
    try {
      const upload = await api.upload(source, name);
      setter((current) => (current && current.preview === preview ? {
        preview, name, ref: upload.id, url: upload.url, width: upload.width, height: upload.height,
        status: 'ready',
      } : current));
    } catch (error) {
      const message = explain(error);
      setter((current) => (current && current.preview === preview
        ? { ...current, status: 'error', error: `Could not upload: ${message}` } : current));
    }
  };
  const choosePhoto = (source) => {
    setView('photo');
    setPainted(false);
    return choose(setInput, source, 'photo');
  };

  useEffect(() => {
    const paste = (event) => {
      const file = [...(event.clipboardData ? event.clipboardData.files : [])]
        .find((f) => f.type.startsWith('image/'));
      if (file) {
        event.preventDefault();
        choosePhoto(file);
      }
    };
    document.addEventListener('paste', paste);
    return () => document.removeEventListener('paste', paste);
  }, [api]);

  const open = (next, shownBefore) => {
    if (following.current) following.current.abort();
    following.current = null;
    setJob(next);
    setBefore(shownBefore === undefined ? inputOf(next.id) : shownBefore);
    setFollowError('');
    setView('result');
    reveal.current = true;
    if (isTerminal(next)) return;
    const controller = new AbortController();
    following.current = controller;
    api.follow(next.id, (status) => { if (!controller.signal.aborted) setJob(status); }, controller.signal)
      .catch((error) => { if (!controller.signal.aborted) setFollowError(explain(error)); })
      .finally(() => {
        if (following.current !== controller) return;
        following.current = null;
        refreshHistory();
        refreshAccount();
      });
  };

  // On a phone the viewer sits below the controls: bring it into sight when a job opens.
  useEffect(() => {
    if (!reveal.current) return;
    reveal.current = false;
    if (window.matchMedia('(max-width: 800px)').matches) {
      document.getElementById('viewer').scrollIntoView({ behavior: 'smooth', block: 'start' });
    }
  }, [job && job.id]);

  const problem = () => {
    if (!noImage && !input) return refused.photo || 'Choose a room photo first.';
    if (!noImage && input.status === 'uploading') return 'The photo is still uploading.';
    if (!noImage && input.status === 'error') return input.error;
    if (offer.has('reference_image') && reference && reference.status === 'error') return reference.error;
    if (inputRequired(spec, 'reference_image') && !(reference && reference.status === 'ready')) {
      return 'Choose a reference photo first.';
    }
    if (offer.has('product_image') && !(product && product.status === 'ready')) {
      return product && product.status === 'error' ? product.error : 'Choose a product photo first.';
    }
    if (placing && !placed) return 'The photo is still loading.';
    const promptNeeded = spec.requires.some((rule) => rule.any_of.length === 1 && rule.any_of[0] === 'prompt');
    if (promptNeeded && !params.prompt.trim()) return 'Write a prompt first.';
    return '';
  };

  const generate = async () => {
    if (busy) return;
    const blocked = problem();
    setSubmitError(blocked);
    if (blocked) return;
    setBusy(true);
    try {
      const refs = { image: input && input.ref, reference: reference && reference.ref,
        product: product && product.ref,
        boxes: placing ? { placement: placed.placement, area: placed.area } : null };
      if (masking) {
        const blob = await maskBlob(canvasRef.current);
        if (!blob) {
          setView('photo');
          setSubmitError('Paint the area to change on the photo first.');
          return;
        }
        refs.mask = (await api.upload(blob, 'mask.png')).id;
      }
      const created = await api.post('v1/jobs', jobBody(spec, params, refs));
      let shown = null;
      if (!noImage) {
        rememberInput(created.id, { url: input.url, width: input.width, height: input.height });
        shown = { url: input.preview, width: input.width, height: input.height };
      }
      open(created, shown);
      refreshHistory();
    } catch (error) {
      setSubmitError(explain(error));
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    const shortcut = (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        generate();
      }
    };
    document.addEventListener('keydown', shortcut);
    return () => document.removeEventListener('keydown', shortcut);
  });

  const cancel = async (target) => {
    try {
      setJob(await api.post(`v1/jobs/${encodeURIComponent(target.id)}/cancel`));
    } catch (error) {
      setFollowError(explain(error));
    }
  };

  const reuse = (output, from) => {
    setInput({ preview: output.url, ref: output.url, url: output.url, width: output.width,
      height: output.height, name: `Result of ${taskInfo(from.task).label.toLowerCase()}`,
      status: 'ready' });
    setPainted(false);
    setView('photo');
    window.scrollTo({ top: 0, behavior: 'smooth' });
  };

  const setParam = (name, value) => setParams((current) => ({ ...current, [name]: value }));
  const pickTask = (id) => {
    const picked = catalog.tasks.find((t) => t.name === id);
    setTask(id);
    setSubmitError('');
    if (needsMask(picked, params) || offered(picked).has('placement')) setView('photo');
  };
  const dimensions = (image) => setInput((current) => (current && !current.width
    ? { ...current, width: image.naturalWidth, height: image.naturalHeight } : current));
  const dropped = (event) => {
    event.preventDefault();
    const [file] = event.dataTransfer.files;
    if (file) choosePhoto(file);
  };
  const count = offer.has('n') ? Number(params.n) || 1 : 1;
  const counted = spec.cost.counted_by;
  const cost = spec.cost.credits * (!counted ? 1 : counted === 'n' ? count : Math.ceil(Number(params[counted]) || 1));
  const available = account && account.credits ? account.credits.available : null;

  return html`<main class="workspace">
    <div class="card panel">
      <section class="step" aria-labelledby="step-photo">
        <h2 id="step-photo"><span class="step-n">1</span>Room photo</h2>
        ${noImage ? html`<p class="muted small">${info.label} needs no photo.</p>`
          : html`<${PhotoPicker} id="photo-file" what="a room photo" input=${input}
            limits=${catalog.limits} refused=${refused.photo}
            onFile=${choosePhoto} onUrl=${choosePhoto} />`}
      </section>
      <section class="step" aria-labelledby="step-task">
        <h2 id="step-task"><span class="step-n">2</span>Task</h2>
        <${TaskPicker} catalog=${catalog} task=${task} onTask=${pickTask} />
      </section>
      <section class="step" aria-labelledby="step-options">
        <h2 id="step-options"><span class="step-n">3</span>${info.label}</h2>
        <${TaskControls} spec=${spec} params=${params} set=${setParam} catalog=${catalog}
          refused=${refused}
          reference=${reference} onReference=${(source) => choose(setReference, source, 'reference')}
          product=${product} onProduct=${(source) => choose(setProduct, source, 'product')} />
      </section>
      <div class="generate">
        <button type="button" class="primary big" onClick=${generate} disabled=${busy}
          aria-keyshortcuts="Control+Enter">
          ${busy ? 'Sending…' : count > 1 ? `Generate ${count} images` : 'Generate'}</button>
        <p class="muted small">${cost} credit${cost === 1 ? '' : 's'}${available == null ? '' : ` of ${available} left`} · Ctrl+Enter</p>
        <p class="error-text" role="alert">${submitError}</p>
      </div>
      <${UnavailableTasks} catalog=${catalog} />
    </div>
    <${Viewer} view=${view} setView=${setView} input=${input} noImage=${noImage}
      masking=${masking} onDimensions=${dimensions} onDrop=${dropped}
      mask=${{ brush, setBrush, erasing, setErasing, canvasRef, painted, onPainted: setPainted }}
      placing=${placing} boxes=${placed} onBoxes=${setPlaced}
      job=${job} before=${before} followError=${followError} onCancel=${cancel} onReuse=${reuse} />
    <${History} jobs=${jobs} error=${historyError} current=${job && job.id}
      onOpen=${(j) => open(j)} onRefresh=${refreshHistory} />
  </main>`;
}

function App() {
  const [key, setKey] = useState(savedKey);
  const [account, setAccount] = useState(null);
  const [asking, setAsking] = useState(() => !savedKey());
  const [keyError, setKeyError] = useState('');
  const [catalog, setCatalog] = useState(null);
  const [catalogError, setCatalogError] = useState('');
  const api = useMemo(() => (key ? new Api(key) : null), [key]);

  useEffect(() => {
    loadCatalog().then(setCatalog, (error) => setCatalogError(error.message));
  }, []);

  const refused = (error) => {
    setKeyError(`This key was not accepted: ${error.message}.`);
    setAccount(null);
    setAsking(true);
  };

  useEffect(() => {
    if (!api) return;
    api.get('v1/account').then(setAccount, (error) => { if (error.status === 401) refused(error); });
  }, [api]);

  const accepted = (newKey, newAccount) => {
    saveKey(newKey);
    setKey(newKey);
    setAccount(newAccount);
    setKeyError('');
    setAsking(false);
  };
  const changeKey = () => {
    setKeyError('');
    setAsking(true);
  };
  const cancelChange = account ? () => setAsking(false) : null;
  const forget = () => {
    forgetKey();
    setKey('');
    setAccount(null);
  };

  let body;
  if (catalogError) {
    body = html`<main class="single"><div class="card notice danger" role="alert">
      <strong>The server did not answer</strong><p>${catalogError}</p></div></main>`;
  } else if (asking || !api) {
    body = html`<main class="single">
      <${KeyForm} initialError=${keyError} onAccepted=${accepted} onCancel=${cancelChange} />
      ${key && html`<p class="center"><button type="button" class="link" onClick=${forget}>
        Forget the saved key</button></p>`}
    </main>`;
  } else if (!catalog) {
    body = html`<main class="single"><p class="boot">Loading…</p></main>`;
  } else {
    body = html`<${Workspace} api=${api} catalog=${catalog} account=${account}
      onUnauthorized=${refused} onAccount=${setAccount} />`;
  }
  return html`<${Header} catalog=${catalog} account=${asking ? null : account}
    onChangeKey=${api && !asking ? changeKey : null} />${body}`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
