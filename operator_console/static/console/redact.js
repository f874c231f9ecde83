/* SceneLink console: redacted copies and clips for disclosure, on the playback view.
   The investigator pauses the video, draws a box over what must be hidden (a keyframe of a
   region at that moment; boxes move linearly between a region's keyframes), can ask the server
   to propose face regions, marks audio ranges to mute, gives a reason, and asks for a redacted
   copy or a clip of the range; progress is followed until the files can be downloaded. Times
   are on the session's clock (the working copy's time; a part's offset added when the parts
   play one by one). */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var errorText = window.SceneLink.errorText;
  var state = null;  // { id, tracks: [{label, keyframes}], current, mutes, job, timer }
  var ui = null;
  var made = {};     // derivative id -> session id, finished copies (offered to the export)

  function round3(n) { return Math.round(n * 1000) / 1000; }
  /* The moment shown, on the session's clock (playback.js knows where a part starts). */
  function sessionTime() { return C.playbackTime ? C.playbackTime() : (C.els.playbackVideo.currentTime || 0); }
  function now() { return round3(sessionTime()); }

  /* A region's box at t: linear between keyframes, none outside them; one keyframe holds. */
  function boxAt(track, t) {
    var ks = track.keyframes;
    if (!ks.length) return null;
    if (ks.length === 1) return ks[0];
    if (t < ks[0].t || t > ks[ks.length - 1].t) return null;
    for (var i = 0; i + 1 < ks.length; i++) {
      var a = ks[i], b = ks[i + 1];
      if (t <= b.t) {
        var f = (t - a.t) / (b.t - a.t);
        return { x: a.x + f * (b.x - a.x), y: a.y + f * (b.y - a.y), w: a.w + f * (b.w - a.w), h: a.h + f * (b.h - a.h) };
      }
    }
    return null;
  }

  /* The picture's rectangle inside the video element (letterboxed: object-fit contain). */
  function pictureRect() {
    var v = C.els.playbackVideo;
    var w = v.clientWidth, h = v.clientHeight;
    var vw = v.videoWidth || w, vh = v.videoHeight || h;
    var scale = Math.min(w / vw, h / vh);
    var pw = vw * scale, ph = vh * scale;
    return { left: v.offsetLeft + (w - pw) / 2, top: v.offsetTop + (h - ph) / 2, width: pw, height: ph };
  }

  function drawBoxes() {
    if (!state || !ui) return;
    C.clear(ui.overlay);
    var r = pictureRect();
    var t = sessionTime();
    state.tracks.forEach(function (track, i) {
      var b = boxAt(track, t);
      if (!b) return;
      var el = C.mk('div', 'redact-box' + (i === state.current ? ' current' : ''));
      el.style.left = (r.left + b.x * r.width) + 'px';
      el.style.top = (r.top + b.y * r.height) + 'px';
      el.style.width = (b.w * r.width) + 'px';
      el.style.height = (b.h * r.height) + 'px';
      el.title = track.label;
      ui.overlay.appendChild(el);
    });
  }

  function clamp01(n) { return Math.min(1, Math.max(0, n)); }

  /* Drawing: press, drag and release over the paused picture adds a keyframe to the region
     being edited (a new region if none is). */
  function onDraw(ev) {
    if (!state || !ui.drawing) return;
    ev.preventDefault();
    var r = pictureRect();
    var origin = ui.overlay.getBoundingClientRect();
    function rel(e) {
      return { x: clamp01((e.clientX - origin.left - r.left) / r.width), y: clamp01((e.clientY - origin.top - r.top) / r.height) };
    }
    var a = rel(ev);
    var ghost = C.mk('div', 'redact-box current');
    ui.overlay.appendChild(ghost);
    function move(e) {
      var b = rel(e);
      ghost.style.left = (r.left + Math.min(a.x, b.x) * r.width) + 'px';
      ghost.style.top = (r.top + Math.min(a.y, b.y) * r.height) + 'px';
      ghost.style.width = (Math.abs(b.x - a.x) * r.width) + 'px';
      ghost.style.height = (Math.abs(b.y - a.y) * r.height) + 'px';
    }
    function up(e) {
      ui.overlay.removeEventListener('pointermove', move);
      ui.overlay.removeEventListener('pointerup', up);
      var b = rel(e);
      var box = { t: now(), x: round3(Math.min(a.x, b.x)), y: round3(Math.min(a.y, b.y)), w: round3(Math.abs(b.x - a.x)), h: round3(Math.abs(b.y - a.y)) };
      if (box.w < 0.01 || box.h < 0.01) { drawBoxes(); return; }
      if (state.current === null) {
        state.tracks.push({ label: 'region ' + (state.tracks.length + 1), keyframes: [] });
        state.current = state.tracks.length - 1;
      }
      var ks = state.tracks[state.current].keyframes.filter(function (k) { return k.t !== box.t; });
      ks.push(box);
      ks.sort(function (p, q) { return p.t - q.t; });
      state.tracks[state.current].keyframes = ks;
      render();
    }
    ui.overlay.addEventListener('pointermove', move);
    ui.overlay.addEventListener('pointerup', up);
  }

  function setDrawing(on) {
    ui.drawing = on;
    ui.overlay.classList.toggle('drawing', on);
    ui.draw.textContent = on ? 'Stop drawing' : 'Draw a box at this moment';
    if (on) C.els.playbackVideo.pause();
  }

  function button(text, onClick, cls) {
    var b = C.mk('button', cls || 'secondary', text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function render() {
    C.clear(ui.regions);
    state.tracks.forEach(function (track, i) {
      var li = C.mk('li', i === state.current ? 'current' : '');
      li.appendChild(C.mk('span', null, track.label + ': ' + track.keyframes.map(function (k) { return C.fmtDuration(k.t) || (k.t + ' s'); }).join(', ')));
      li.appendChild(button(i === state.current ? 'Editing' : 'Edit', function () { state.current = i; render(); }));
      li.appendChild(button('Remove', function () {
        state.tracks.splice(i, 1);
        state.current = null;
        render();
      }));
      ui.regions.appendChild(li);
    });
    C.clear(ui.mutes);
    state.mutes.forEach(function (m, i) {
      var li = C.mk('li', null, 'Audio muted ' + m.start_s + ' s to ' + m.end_s + ' s ');
      li.appendChild(button('Remove', function () { state.mutes.splice(i, 1); render(); }));
      ui.mutes.appendChild(li);
    });
    drawBoxes();
  }

  async function proposeFaces() {
    ui.error.textContent = '';
    ui.status.textContent = 'Looking for faces…';
    try {
      var found = await C.api('POST', '/api/recordings/' + state.id + '/faces', rangeBody());
      found.tracks.forEach(function (t) { state.tracks.push(t); });
      ui.status.textContent = found.tracks.length ? found.tracks.length + ' face region(s) proposed: check each one before making the copy.' : 'No faces found: draw the regions by hand.';
      render();
    } catch (e) {
      ui.status.textContent = '';
      ui.error.textContent = errorText(e);
    }
  }

  function number(input) {
    var v = input.value.trim();
    return v === '' ? null : Number(v);
  }

  function rangeBody() {
    var body = { start_s: number(ui.start) || 0 };
    var end = number(ui.end);
    if (end !== null) body.end_s = end;
    return body;
  }

  async function submit(kind) {
    ui.error.textContent = '';
    var body = rangeBody();
    body.reason = ui.reason.value.trim();
    if (kind === 'redactions') {
      body.tracks = state.tracks;
      body.mutes = state.mutes;
    }
    try {
      follow(await C.api('POST', '/api/recordings/' + state.id + '/' + kind, body));
    } catch (e) {
      ui.error.textContent = errorText(e);
    }
  }

  function follow(job) {
    if (!state) return;
    if (state.timer) clearTimeout(state.timer);
    state.job = job;
    C.show(ui.progressLine, true);
    ui.progress.value = job.progress || 0;
    ui.progressLine.setAttribute('data-state', job.state);
    C.show(ui.cancel, job.state === 'queued' || job.state === 'running');
    C.clear(ui.files);
    var what = job.kind === 'clip' ? 'Clip' : 'Redacted copy';
    if (job.state === 'queued' || job.state === 'running') {
      ui.state.textContent = what + ': ' + (job.state === 'queued' ? 'waiting for a worker…' : Math.round(100 * job.progress) + '%');
      state.timer = setTimeout(async function () {
        try { follow(await C.api('GET', '/api/derivatives/' + job.derivative_id)); }
        catch (e) { ui.error.textContent = 'Lost track of the job: ' + errorText(e); }
      }, 700);
    } else if (job.state === 'done') {
      made[job.derivative_id] = job.session_id;
      ui.state.textContent = what + ' ready (it goes into the next export of this recording):';
      job.files.forEach(function (f) {
        var a = C.mk('a', null, f.name);
        a.href = '/api/derivatives/' + job.derivative_id + '/files/' + encodeURIComponent(f.name);
        a.setAttribute('download', f.name);
        a.title = 'SHA-256 ' + f.sha256;
        ui.files.appendChild(a);
      });
      var log = C.mk('a', null, 'redaction log');
      log.href = job.log_url;
      log.setAttribute('download', 'derivative-log.json');
      ui.files.appendChild(log);
    } else {
      ui.state.textContent = what + ' ' + job.state + (job.error ? ': ' + job.error : '');
    }
  }

  async function cancel() {
    if (!state || !state.job) return;
    try { follow(await C.api('POST', '/api/derivatives/' + state.job.derivative_id + '/cancel', {})); }
    catch (e) { ui.error.textContent = errorText(e); }
  }

  function field(label, input) {
    var l = C.mk('label', null, label + ' ');
    l.appendChild(input);
    return l;
  }

  function build(panel) {
    var v = C.els.playbackVideo;
    var frame = C.mk('div', 'redact-frame');
    v.parentNode.insertBefore(frame, v);
    frame.appendChild(v);
    var overlay = C.mk('div', 'redact-overlay');
    frame.appendChild(overlay);
    overlay.addEventListener('pointerdown', onDraw);
    ui = { overlay: overlay, drawing: false };

    panel.appendChild(C.mk('h4', null, 'Redact or clip for disclosure'));
    panel.appendChild(C.mk('p', 'muted', 'The original is never changed: a redacted copy or clip is a new file with its own hash, the original\'s hashes and a log of what was hidden and why.'));
    var tools = C.mk('div', 'redact-tools');
    ui.draw = button('Draw a box at this moment', function () { setDrawing(!ui.drawing); });
    tools.appendChild(ui.draw);
    tools.appendChild(button('New region', function () { state.current = null; render(); }));
    tools.appendChild(button('Find faces', proposeFaces));
    panel.appendChild(tools);
    ui.regions = C.mk('ul', 'redact-list');
    ui.regions.setAttribute('aria-label', 'Regions to blur');
    panel.appendChild(ui.regions);

    var muteLine = C.mk('div', 'redact-tools');
    ui.muteFrom = C.mk('input');
    ui.muteTo = C.mk('input');
    [ui.muteFrom, ui.muteTo].forEach(function (i) { i.type = 'number'; i.step = '0.1'; i.min = '0'; i.className = 'short'; });
    muteLine.appendChild(field('Mute audio from (s)', ui.muteFrom));
    muteLine.appendChild(button('Now', function () { ui.muteFrom.value = now(); }));
    muteLine.appendChild(field('to', ui.muteTo));
    muteLine.appendChild(button('Now', function () { ui.muteTo.value = now(); }));
    muteLine.appendChild(button('Add mute', function () {
      var a = number(ui.muteFrom), b = number(ui.muteTo);
      if (a === null || b === null || !(b > a)) { ui.error.textContent = 'A mute needs a start before its end.'; return; }
      state.mutes.push({ start_s: a, end_s: b });
      ui.muteFrom.value = ui.muteTo.value = '';
      render();
    }));
    panel.appendChild(muteLine);
    ui.mutes = C.mk('ul', 'redact-list');
    ui.mutes.setAttribute('aria-label', 'Audio to mute');
    panel.appendChild(ui.mutes);

    var range = C.mk('div', 'redact-tools');
    ui.start = C.mk('input');
    ui.end = C.mk('input');
    [ui.start, ui.end].forEach(function (i) { i.type = 'number'; i.step = '0.1'; i.min = '0'; i.className = 'short'; });
    ui.end.placeholder = 'end';
    range.appendChild(field('From (s)', ui.start));
    range.appendChild(button('Now', function () { ui.start.value = now(); }));
    range.appendChild(field('to', ui.end));
    range.appendChild(button('Now', function () { ui.end.value = now(); }));
    panel.appendChild(range);

    ui.reason = C.mk('textarea');
    ui.reason.rows = 2;
    ui.reason.maxLength = 1000;
    panel.appendChild(field('Reason (required, goes in the log)', ui.reason));
    var actions = C.mk('div', 'redact-tools');
    actions.appendChild(button('Make redacted copy', function () { submit('redactions'); }, 'primary'));
    actions.appendChild(button('Make clip (no re-encoding)', function () { submit('clips'); }));
    panel.appendChild(actions);

    ui.progressLine = C.mk('p', 'redact-progress');
    ui.state = C.mk('span');
    ui.progress = C.mk('progress');
    ui.progress.max = 1;
    ui.cancel = button('Cancel', cancel);
    ui.files = C.mk('span', 'redact-files');
    [ui.state, ui.progress, ui.cancel, ui.files].forEach(function (e) { ui.progressLine.appendChild(e); });
    C.show(ui.progressLine, false);
    panel.appendChild(ui.progressLine);
    ui.status = C.mk('p', 'muted');
    ui.error = C.mk('p', 'error');
    ui.error.setAttribute('role', 'alert');
    panel.appendChild(ui.status);
    panel.appendChild(ui.error);

    ['timeupdate', 'seeked', 'loadedmetadata'].forEach(function (e) { v.addEventListener(e, drawBoxes); });
    window.addEventListener('resize', drawBoxes);
  }

  /* A new recording in the player starts a new plan (playback.js names it on #playback). */
  function onRecording() {
    var panel = document.getElementById('redact-panel');
    var id = C.els.playback && C.els.playback.getAttribute('data-session-id');
    if (!panel || !id || !C.may('POST /api/recordings/{session_id}/redactions')) return;
    if (!ui) build(panel);
    if (state && state.timer) clearTimeout(state.timer);
    state = { id: id, tracks: [], current: null, mutes: [], job: null, timer: null };
    setDrawing(false);
    ui.reason.value = ui.start.value = ui.end.value = '';
    ui.status.textContent = ui.error.textContent = '';
    C.show(ui.progressLine, false);
    C.show(panel, true);
    render();
  }

  /* Finished copies of these sessions, for the export form (export.js). */
  C.derivativesFor = function (sessionIds) {
    return Object.keys(made).filter(function (d) { return sessionIds.indexOf(made[d]) >= 0; });
  };

  document.addEventListener('DOMContentLoaded', function () {
    var playback = document.getElementById('playback');
    if (!playback || !window.MutationObserver) return;
    new MutationObserver(onRecording).observe(playback, { attributes: true, attributeFilter: ['data-session-id'] });
  });
})();
