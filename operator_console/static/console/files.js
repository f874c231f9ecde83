/* SceneLink console: the watched session's photos, videos and stills as they arrive (a
   thumbnail made by the server, carrying the original's hash; the original a click away),
   the "Snapshot" and "Ask for a photo" buttons, and "Low bandwidth: stills every N s" with the
   latest still while the caller's page sends stills instead of video. Follows live.js through
   #live's data-session-id, as shares.js does. Plain ES2017, no build step, CSP-safe. */
(function () {
  'use strict';

  var POLL_MS = 2000;
  var api = window.SceneLink.console.api;
  var errorText = window.SceneLink.errorText;
  var REFRESH = { 'X-SceneLink-Refresh': '1' };  // a timer's own request: audited once
  var $ = function (id) { return document.getElementById(id); };
  var els = {};
  var sessionId = null;
  var pollTimer = null;
  var shown = '';

  function show(el, on) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); }

  function filesPath(id) { return '/api/sessions/' + encodeURIComponent(id) + '/files'; }
  function fileUrl(id, name) { return filesPath(id) + '/' + encodeURIComponent(name); }

  function fmtTime(iso) {
    var t = Date.parse(iso);
    return isFinite(t) ? new Date(t).toLocaleTimeString('en-GB') : '';
  }

  function fmtSize(n) {
    if (!n) return '';
    return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MB' : Math.max(1, Math.round(n / 1024)) + ' kB';
  }

  var KINDS = { photo: 'Photo', video: 'Video', still: 'Still', snapshot: 'Snapshot' };
  var ORIGINS = {
    gallery: 'from the phone', camera: 'taken now', requested: 'asked for',
    low_bandwidth: 'low bandwidth', handler: 'live picture'
  };

  function tile(f) {
    var li = document.createElement('li');
    li.className = 'file-row';
    li.setAttribute('data-name', f.name);
    li.setAttribute('data-kind', f.kind);
    var open = document.createElement('a');
    open.href = fileUrl(sessionId, f.name);
    open.target = '_blank';
    open.rel = 'noopener';
    if (f.thumbnail) {
      var img = document.createElement('img');
      img.src = fileUrl(sessionId, f.thumbnail);
      img.alt = (KINDS[f.kind] || 'File') + ' ' + fmtTime(f.at);
      img.className = 'file-thumb';
      open.appendChild(img);
    } else {
      open.className = 'file-tile';
      open.textContent = f.content_type.indexOf('video/') === 0 ? 'Video: open' :
        (/hei[cf]/.test(f.content_type) ? 'HEIC photo: download' : 'Open the file');
    }
    var caption = document.createElement('span');
    caption.className = 'file-caption';
    caption.textContent = (KINDS[f.kind] || f.kind) + ', ' + (ORIGINS[f.origin] || f.origin) +
      (f.by ? ' by ' + f.by : '') + ', ' + fmtTime(f.at) + (f.size ? ', ' + fmtSize(f.size) : '');
    var hash = document.createElement('span');
    hash.className = 'file-hash muted';
    hash.textContent = 'SHA-256 ' + f.sha256.slice(0, 16) + '…';
    hash.title = f.sha256;
    li.appendChild(open);
    li.appendChild(caption);
    li.appendChild(hash);
    return li;
  }

  function render(data) {
    var files = (data && data.files) || [];
    var stills = data && data.stills && data.stills.on ? data.stills : null;
    var latest = files.filter(function (f) { return f.kind === 'still'; }).pop();
    var sig = JSON.stringify([files.length, stills, latest && latest.name]);
    if (sig === shown) return;
    shown = sig;
    els.stills.textContent = stills ?
      'Low bandwidth: stills every ' + Math.round(data.stills_interval_s) + ' s (' + stills.reason + ')' : '';
    show(els.stills, !!stills);
    if (stills && latest && latest.thumbnail) {
      els.latest.src = fileUrl(sessionId, latest.thumbnail);
      show(els.latest, true);
    } else {
      show(els.latest, false);
    }
    while (els.list.firstChild) els.list.removeChild(els.list.firstChild);
    files.slice().reverse().forEach(function (f) { els.list.appendChild(tile(f)); });
    show(els.empty, files.length === 0);
  }

  async function refresh(first) {
    var id = sessionId;
    if (!id) return;
    try {
      var data = await api('GET', filesPath(id), undefined, first ? undefined : REFRESH);
      if (id !== sessionId) return;
      show(els.panel, true);
      render(data);
    } catch (e) {
      if (e.status === 401 || e.status === 403) stop();
    }
  }

  async function act(button, path, done) {
    var id = sessionId;
    els.error.textContent = '';
    button.disabled = true;
    try {
      await api('POST', path);
      if (id === sessionId) els.error.textContent = done;
      await refresh(false);
    } catch (e) {
      els.error.textContent = errorText(e);
    } finally {
      button.disabled = false;
    }
  }

  function stop() {
    show(els.panel, false);
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function follow() {
    var id = els.live.getAttribute('data-session-id');
    var ended = els.live.getAttribute('data-state') === 'ended';
    var may = window.SceneLink.console.may;
    show(els.actions, !ended && may('POST /api/sessions/{session_id}/snapshot'));
    if (id === sessionId) return;
    sessionId = id;
    shown = '';
    els.error.textContent = '';
    stop();
    if (!id || !may('GET /api/sessions/{session_id}/files')) return;
    refresh(true);
    pollTimer = setInterval(function () { refresh(false); }, POLL_MS);
  }

  function init() {
    els = {
      live: $('live'), panel: $('files-panel'), actions: $('file-actions'), snapshot: $('snapshot'),
      askPhoto: $('ask-photo'), stills: $('stills-banner'), latest: $('latest-still'),
      error: $('files-error'), empty: $('files-empty'), list: $('files')
    };
    if (!els.live || !els.panel || !window.MutationObserver) return;
    els.snapshot.addEventListener('click', function () {
      act(els.snapshot, filesPath(sessionId).replace(/\/files$/, '/snapshot'), 'Snapshot taken.');
    });
    els.askPhoto.addEventListener('click', function () {
      act(els.askPhoto, filesPath(sessionId).replace(/\/files$/, '/photo-request'), 'Asked the caller for a photo.');
    });
    new MutationObserver(follow).observe(els.live, { attributes: true, attributeFilter: ['data-session-id', 'data-state'] });
    follow();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
