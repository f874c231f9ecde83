/* SceneLink operator console. Plain ES2017, no framework, no build step, CSP-safe (no inline code). */
(function () {
  'use strict';

  var POLL_MS = 2000;
  var RECORDINGS_POLL_MS = 15000;
  var ICE_WAIT_MS = 3000;
  var MAX_BACKOFF_MS = 10000;

  var $ = function (id) { return document.getElementById(id); };
  var els = {};
  var me = null;
  var config = { tile_url: null, tile_attribution: '', force_name: '' };
  var sessions = {};          // id -> session object (latest known)
  var rows = {};              // id -> row element refs
  var pollTimer = null;
  var recTimer = null;
  var tickTimer = null;
  var outboxEnabled = true;
  var outboxSig = '';
  var recSig = '';
  var live = null;            // state of the watched session
  var liveMap = null;
  var playbackMap = null;
  var playbackLayer = null;

  /* ---------------- helpers ---------------- */

  function show(el, on) {
    if (!el) return;
    if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', '');
  }

  function clear(el) { while (el && el.firstChild) el.removeChild(el.firstChild); }

  function mk(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function ApiError(status, data) {
    this.status = status;
    this.data = data || {};
    this.message = (data && data.error) ? String(data.error) : ('HTTP ' + status);
  }

  async function api(method, path, body) {
    var headers = { 'X-Requested-With': 'scenelink', 'Accept': 'application/json' };
    var opts = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    var res = await fetch(path, opts);
    var data = null;
    var text = await res.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    if (!res.ok) {
      var err = new ApiError(res.status, data);
      if (res.status === 401 && path !== '/api/me' && path !== '/api/login' && me) onSignedOut('Your session has expired. Please sign in again.');
      throw err;
    }
    return data;
  }

  function globalError(msg) {
    els.globalError.textContent = msg || '';
    show(els.globalError, !!msg);
  }

  function parseTime(iso) {
    if (!iso) return NaN;
    var t = Date.parse(iso);
    return t;
  }

  function ago(ms) {
    if (!isFinite(ms)) return '';
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min ago';
    return Math.floor(h / 24) + ' days ago';
  }

  function fmtDuration(sec) {
    if (typeof sec !== 'number' || !isFinite(sec)) return '';
    sec = Math.round(sec);
    var m = Math.floor(sec / 60);
    var s = sec % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function fmtDate(iso) {
    var t = parseTime(iso);
    if (!isFinite(t)) return '';
    try { return new Date(t).toLocaleString('en-GB'); } catch (e) { return new Date(t).toISOString(); }
  }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function validFix(f) { return f && isNum(f.lat) && isNum(f.lon); }

  var STATE_LABELS = {
    link_sent: 'Link sent', opened: 'Link opened', connecting: 'Connecting',
    live: 'Live', reconnecting: 'Reconnecting', ended: 'Ended'
  };
  function stateLabel(s) { return STATE_LABELS[s] || String(s || 'unknown'); }

  // "" while the evidence is being written; else what the call handler must know now.
  function recordingProblem(s) {
    var rec = s && s.recording;
    if (!rec || rec.state !== 'failed') return '';
    return 'Recording failed' + (rec.cause ? ': ' + rec.cause : '') + ' (live view continues)';
  }

  function viewersCount(v) {
    if (Array.isArray(v)) return v.length;
    if (isNum(v)) return v;
    return 0;
  }

  function wsUrl(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  }

  function backoff(attempt) { return Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempt)); }

  function waitForIce(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') { resolve(); return; }
      var done = false;
      var timer = setTimeout(finish, ICE_WAIT_MS);
      function finish() {
        if (done) return;
        done = true;
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        pc.removeEventListener('icecandidate', onCand);
        resolve();
      }
      function check() { if (pc.iceGatheringState === 'complete') finish(); }
      function onCand(ev) { if (!ev.candidate) finish(); }
      pc.addEventListener('icegatheringstatechange', check);
      pc.addEventListener('icecandidate', onCand);
    });
  }

  /* ---------------- auth ---------------- */

  function onSignedIn(user) {
    me = user;
    document.body.setAttribute('data-auth', 'in');
    els.username.textContent = user && user.username ? user.username : '';
    els.userRoles.textContent = user && Array.isArray(user.roles) && user.roles.length ? '(' + user.roles.join(', ') + ')' : '';
    show(els.userBox, true);
    show(els.loginSection, false);
    show(els.app, true);
    globalError('');
    loadConfig();
    startPolling();
  }

  function onSignedOut(message) {
    me = null;
    stopPolling();
    stopWatching();
    document.body.setAttribute('data-auth', 'out');
    show(els.userBox, false);
    show(els.app, false);
    show(els.loginSection, true);
    els.loginError.textContent = message || '';
    sessions = {};
    rows = {};
    clear(els.sessions);
    clear(els.outbox);
    clear(els.recordings);
    outboxSig = '';
    outboxEnabled = true;
    recSig = '';
    recQuery = '';
    playback = null;
    show(els.playback, false);
    try { els.playbackVideo.pause(); els.playbackVideo.removeAttribute('src'); els.playbackVideo.load(); } catch (e) {}
    var u = els.loginForm.elements.username;
    if (u) setTimeout(function () { try { u.focus(); } catch (e) {} }, 0);
  }

  async function checkMe() {
    try {
      var user = await api('GET', '/api/me');
      onSignedIn(user);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onSignedOut('');
      else {
        onSignedOut('');
        globalError('Cannot reach the SceneLink server. Retrying…');
        setTimeout(checkMe, 3000);
      }
    }
  }

  async function onLoginSubmit(ev) {
    ev.preventDefault();
    var f = els.loginForm;
    var btn = f.querySelector('button[type=submit]');
    var username = f.elements.username.value.trim();
    var password = f.elements.password.value;
    els.loginError.textContent = '';
    if (!username || !password) { els.loginError.textContent = 'Enter your username and password.'; return; }
    btn.disabled = true;
    try {
      var user = await api('POST', '/api/login', { username: username, password: password });
      f.elements.password.value = '';
      if (!user || !user.username) {
        try { user = await api('GET', '/api/me'); } catch (e) { user = { username: username, roles: [] }; }
      }
      onSignedIn(user);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) els.loginError.textContent = 'Wrong username or password.';
      else if (e instanceof ApiError && e.status === 429) els.loginError.textContent = 'Too many attempts. Please wait and try again.';
      else if (e instanceof ApiError) els.loginError.textContent = 'Sign in failed: ' + e.message;
      else els.loginError.textContent = 'Cannot reach the server. Please try again.';
    } finally {
      btn.disabled = false;
    }
  }

  async function logout() {
    try { await api('POST', '/api/logout', {}); } catch (e) { /* signed out locally anyway */ }
    onSignedOut('You have signed out.');
  }

  async function loadConfig() {
    try {
      var c = await api('GET', '/api/config');
      if (c) config = c;
    } catch (e) { /* map works without tiles */ }
    els.forceName.textContent = config.force_name ? '– ' + config.force_name : '';
    if (config.force_name) document.title = 'SceneLink – ' + config.force_name;
    if (liveMap) addTiles(liveMap.map);
    if (playbackMap) addTiles(playbackMap.map);
  }

  /* ---------------- polling ---------------- */

  function startPolling() {
    stopPolling();
    pollOnce();
    pollTimer = setInterval(pollOnce, POLL_MS);
    loadRecordings();
    recTimer = setInterval(loadRecordings, RECORDINGS_POLL_MS);
    tickTimer = setInterval(tick, 1000);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    if (recTimer) clearInterval(recTimer);
    if (tickTimer) clearInterval(tickTimer);
    pollTimer = recTimer = tickTimer = null;
  }

  var polling = false;
  async function pollOnce() {
    if (!me || polling) return;
    polling = true;
    try {
      var data = await api('GET', '/api/sessions');
      renderSessions((data && data.sessions) || []);
      globalError('');
    } catch (e) {
      if (!(e instanceof ApiError)) globalError('Connection to the server lost. Retrying…');
    }
    if (me && outboxEnabled) {
      try {
        var ob = await api('GET', '/api/sms/outbox');
        show(els.outboxPanel, true);
        renderOutbox((ob && ob.messages) || []);
      } catch (e) {
        // 404: a real SMS provider; 403: this role sends no links. Either way, stop asking.
        if (e instanceof ApiError && (e.status === 404 || e.status === 403)) { outboxEnabled = false; show(els.outboxPanel, false); }
      }
    }
    polling = false;
  }

  function tick() {
    Object.keys(rows).forEach(function (id) { updateRowAge(id); });
    updateLastFixText();
  }

  /* ---------------- sessions list ---------------- */

  function sortKey(s) {
    var t = parseTime(s.created_at);
    return isFinite(t) ? t : 0;
  }

  function renderSessions(list) {
    var seen = {};
    list = list.filter(function (s) { return s && s.id !== undefined && s.id !== null; });
    list.sort(function (a, b) {
      var ae = a.state === 'ended' ? 1 : 0;
      var be = b.state === 'ended' ? 1 : 0;
      if (ae !== be) return ae - be;
      return sortKey(b) - sortKey(a);
    });
    list.forEach(function (s) {
      var id = String(s.id);
      seen[id] = true;
      sessions[id] = s;
      if (!rows[id]) rows[id] = buildRow(id);
      updateRow(id);
      if (live && live.id === id) onLiveSession(s);
    });
    Object.keys(rows).forEach(function (id) {
      if (!seen[id]) {
        if (rows[id].li.parentNode) rows[id].li.parentNode.removeChild(rows[id].li);
        delete rows[id];
        delete sessions[id];
      }
    });
    // Reorder only if needed (moving nodes while a user clicks is annoying).
    var current = Array.prototype.map.call(els.sessions.children, function (li) { return li.getAttribute('data-session-id'); });
    var wanted = list.map(function (s) { return String(s.id); });
    if (current.join('\n') !== wanted.join('\n')) {
      wanted.forEach(function (id) { els.sessions.appendChild(rows[id].li); });
    }
    show(els.sessionsEmpty, list.length === 0);
  }

  function buildRow(id) {
    var li = mk('li', 'session-row');
    li.setAttribute('data-session-id', id);
    var main = mk('div', 'row-main');
    var ref = mk('span', 'ref');
    var phone = mk('span', 'phone');
    var mode = mk('span', 'mode');
    main.appendChild(ref); main.appendChild(phone); main.appendChild(mode);
    var meta = mk('div', 'row-meta');
    var state = mk('span', 'state state-badge');
    var fix = mk('span', 'fix-age');
    var viewers = mk('span', 'viewers');
    var sms = mk('span', 'sms');
    var rec = mk('span', 'recording-failed');
    rec.setAttribute('role', 'alert');
    meta.appendChild(state); meta.appendChild(fix); meta.appendChild(viewers); meta.appendChild(sms);
    meta.appendChild(rec);
    var actions = mk('div', 'row-actions');
    var watch = mk('button', 'btn btn-small watch', 'Watch');
    watch.type = 'button';
    var end = mk('button', 'btn btn-small btn-danger end', 'End');
    end.type = 'button';
    var retry = mk('button', 'btn btn-small retry-sms', 'Retry SMS');
    retry.type = 'button';
    retry.hidden = true;
    actions.appendChild(retry); actions.appendChild(watch); actions.appendChild(end);
    li.appendChild(main); li.appendChild(meta); li.appendChild(actions);
    watch.addEventListener('click', function () { watchSession(id); });
    end.addEventListener('click', function () { endSession(id, end); });
    retry.addEventListener('click', function () { resendLink(id, retry); });
    return { li: li, ref: ref, phone: phone, mode: mode, state: state, fix: fix, viewers: viewers, sms: sms, rec: rec, retry: retry, watch: watch, end: end };
  }

  function updateRow(id) {
    var r = rows[id];
    var s = sessions[id];
    if (!r || !s) return;
    r.li.setAttribute('data-state', s.state || '');
    r.li.classList.toggle('watching', !!(live && live.id === id));
    r.ref.textContent = s.incident_ref || '(no ref)';
    r.phone.textContent = s.phone_masked || '';
    r.mode.textContent = s.mode === 'location' ? 'Location only' : 'Video';
    r.state.textContent = stateLabel(s.state);
    r.state.setAttribute('data-state', s.state || '');
    var vc = viewersCount(s.viewers);
    r.viewers.textContent = vc + (vc === 1 ? ' viewer' : ' viewers');
    if (s.sms && s.sms.status === 'failed') {
      r.sms.textContent = 'SMS failed' + (s.sms.error ? ': ' + s.sms.error : '');
      r.sms.className = 'sms sms-failed';
    } else {
      r.sms.textContent = '';
      r.sms.className = 'sms';
    }
    r.rec.textContent = recordingProblem(s);
    show(r.rec, !!r.rec.textContent);
    var isEnded = s.state === 'ended';
    // A fresh link only while the caller has not opened theirs (the server refuses after).
    show(r.retry, !!(s.sms && s.sms.status === 'failed') && s.state === 'link_sent');
    show(r.end, !isEnded);
    r.watch.textContent = isEnded ? 'View' : 'Watch';
    updateRowAge(id);
  }

  function updateRowAge(id) {
    var r = rows[id];
    var s = sessions[id];
    if (!r || !s) return;
    var f = s.last_fix;
    var count = isNum(s.fix_count) ? s.fix_count : 0;
    if (validFix(f)) {
      var t = parseTime(f.received_at || f.device_time);
      r.fix.textContent = 'Last fix ' + (isFinite(t) ? ago(Date.now() - t) : '') +
        (isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '') + ' · ' + count + ' fixes';
    } else {
      r.fix.textContent = 'No location yet';
    }
  }

  async function resendLink(id, btn) {
    btn.disabled = true;
    try {
      var s = await api('POST', '/api/sessions/' + encodeURIComponent(id) + '/resend', {});
      if (s && s.id !== undefined) {
        sessions[String(s.id)] = s;
        updateRow(String(s.id));
      }
    } catch (e) {
      globalError('Could not send a new link: ' + (e.message || 'error'));
    } finally {
      btn.disabled = false;
    }
  }

  async function endSession(id, btn) {
    if (btn) btn.disabled = true;
    try {
      var s = await api('POST', '/api/sessions/' + encodeURIComponent(id) + '/end', {});
      if (s && s.id !== undefined) {
        sessions[String(s.id)] = s;
        updateRow(String(s.id));
        if (live && live.id === String(s.id)) onLiveSession(s);
      }
      pollOnce();
    } catch (e) {
      globalError('Could not end the session: ' + (e.message || 'error'));
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  /* ---------------- SMS outbox ---------------- */

  var URL_RE = /https?:\/\/[^\s<>"']+/g;

  function linkify(parent, text) {
    text = String(text || '');
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      var url = m[0].replace(/[.,;:!?)]+$/, '');
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = mk('a', 'sms-link', url);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      parent.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderOutbox(messages) {
    var sig = JSON.stringify(messages);
    if (sig === outboxSig) return;
    outboxSig = sig;
    clear(els.outbox);
    var list = messages.slice().sort(function (a, b) { return (parseTime(b.sent_at) || 0) - (parseTime(a.sent_at) || 0); });
    list.forEach(function (msg) {
      var li = mk('li', 'outbox-item');
      if (msg.session_id !== undefined && msg.session_id !== null) li.setAttribute('data-session-id', String(msg.session_id));
      var head = mk('div', 'outbox-head');
      head.appendChild(mk('span', 'to', 'To ' + (msg.to_masked || '?')));
      head.appendChild(mk('span', 'muted', fmtDate(msg.sent_at)));
      var body = mk('p', 'outbox-text');
      linkify(body, msg.text);
      li.appendChild(head);
      li.appendChild(body);
      els.outbox.appendChild(li);
    });
    show(els.outboxEmpty, list.length === 0);
  }

  /* ---------------- send form ---------------- */

  function clearSendErrors() {
    Array.prototype.forEach.call(els.sendForm.querySelectorAll('[data-error-for]'), function (e) { e.textContent = ''; });
    Array.prototype.forEach.call(els.sendForm.querySelectorAll('[aria-invalid]'), function (e) { e.removeAttribute('aria-invalid'); });
  }

  function fieldError(name, msg) {
    var target = els.sendForm.querySelector('[data-error-for="' + name + '"]') || els.sendError;
    target.textContent = (target === els.sendError && name !== 'form' ? name + ': ' : '') + msg;
    var input = els.sendForm.elements[name];
    if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  }

  async function onSendSubmit(ev) {
    ev.preventDefault();
    var f = els.sendForm;
    var btn = f.querySelector('button[type=submit]');
    clearSendErrors();
    show(els.sendSuccess, false);
    var phone = f.elements.phone.value.trim();
    var ref = f.elements.incident_ref.value.trim();
    var mode = f.elements.mode.value === 'location' ? 'location' : 'video';
    var bad = false;
    if (!phone) { fieldError('phone', 'Enter the caller\'s mobile number.'); bad = true; }
    if (!ref) { fieldError('incident_ref', 'Enter the incident reference.'); bad = true; }
    if (bad) return;
    btn.disabled = true;
    try {
      var s = await api('POST', '/api/sessions', { phone: phone, incident_ref: ref, mode: mode });
      var msg = 'Link sent to ' + ((s && s.phone_masked) || 'the caller') + ' for ' + ((s && s.incident_ref) || ref) + '.';
      if (s && s.sms && s.sms.status === 'failed') {
        msg = 'Session created, but the SMS failed' + (s.sms.error ? ': ' + s.sms.error : '') + '.';
        els.sendSuccess.className = 'success warn';
      } else {
        els.sendSuccess.className = 'success';
      }
      els.sendSuccess.textContent = msg;
      show(els.sendSuccess, true);
      f.elements.phone.value = '';
      f.elements.incident_ref.value = '';
      pollOnce();
    } catch (e) {
      if (e instanceof ApiError && e.data && e.data.fields && typeof e.data.fields === 'object') {
        Object.keys(e.data.fields).forEach(function (k) { fieldError(k, String(e.data.fields[k])); });
      } else if (e instanceof ApiError) {
        fieldError('form', e.message + (e.data && typeof e.data.detail === 'string' ? ' – ' + e.data.detail : ''));
      } else {
        fieldError('form', 'Cannot reach the server. The link was not sent.');
      }
    } finally {
      btn.disabled = false;
    }
  }

  /* ---------------- maps ---------------- */

  function addTiles(map) {
    if (!window.L || !map || !config.tile_url || map._scenelinkTiles) return;
    try {
      map._scenelinkTiles = L.tileLayer(config.tile_url, {
        maxZoom: 19, attribution: safeAttribution(config.tile_attribution)
      }).addTo(map);
    } catch (e) { /* offline or bad URL: the map still shows overlays */ }
  }

  /* Leaflet renders attribution as HTML: reduce the server's text to plain text, then escape it. */
  function safeAttribution(html) {
    var text = String(html || '');
    try {
      if (window.DOMParser) text = new DOMParser().parseFromString(text, 'text/html').body.textContent || '';
    } catch (e) { /* keep raw text; escaped below */ }
    var d = document.createElement('span');
    d.textContent = text.replace(/\s+/g, ' ').trim();
    return d.innerHTML;
  }

  function makeMap(el) {
    if (!window.L) {
      el.textContent = 'Map unavailable (map library failed to load). Positions are still shown as text.';
      el.className += ' map-unavailable';
      return null;
    }
    var map = L.map(el, { zoomControl: true, attributionControl: true }).setView([54.0, -2.5], 6);
    addTiles(map);
    return { map: map };
  }

  function ensureLiveMap() {
    if (liveMap || !els.liveMap) return liveMap;
    liveMap = makeMap(els.liveMap);
    if (!liveMap) return null;
    liveMap.trail = L.polyline([], { color: '#1d70b8', weight: 4, opacity: 0.8 }).addTo(liveMap.map);
    liveMap.circle = null;
    liveMap.marker = null;
    return liveMap;
  }

  function resetLiveMap() {
    if (!liveMap) return;
    liveMap.trail.setLatLngs([]);
    if (liveMap.marker) { liveMap.map.removeLayer(liveMap.marker); liveMap.marker = null; }
    if (liveMap.circle) { liveMap.map.removeLayer(liveMap.circle); liveMap.circle = null; }
    liveMap.fitted = false;
  }

  function drawFix(fix, pan) {
    if (!liveMap || !validFix(fix)) return;
    var ll = [fix.lat, fix.lon];
    liveMap.trail.addLatLng(ll);
    var acc = isNum(fix.accuracy) ? Math.max(fix.accuracy, 1) : 0;
    if (!liveMap.marker) liveMap.marker = L.marker(ll, { title: 'Caller position' }).addTo(liveMap.map);
    else liveMap.marker.setLatLng(ll);
    if (!liveMap.circle) liveMap.circle = L.circle(ll, { radius: acc, color: '#d4351c', weight: 2, fillOpacity: 0.12 }).addTo(liveMap.map);
    else { liveMap.circle.setLatLng(ll); liveMap.circle.setRadius(acc); }
    if (pan) {
      if (!liveMap.fitted) {
        liveMap.fitted = true;
        liveMap.map.setView(ll, acc > 500 ? 14 : 17);
      } else if (!liveMap.map.getBounds().contains(ll)) {
        liveMap.map.panTo(ll);
      }
    }
  }

  /* ---------------- live panel ---------------- */

  function newLiveState(id) {
    return {
      id: id, session: null, ended: false,
      ws: null, wsAttempt: 0, wsTimer: null,
      fixes: 0, lastFix: null,
      viewer: null, viewerAttempt: 0, viewerTimer: null, viewerGen: 0, prevState: null,
      frames: 0, rvfc: 0, qBase: 0, frameTimer: null, rvfcHandle: null,
      endArmed: false, endTimer: null
    };
  }

  function watchSession(id) {
    id = String(id);
    if (live && live.id === id) { els.live.scrollIntoView && els.live.scrollIntoView({ block: 'start', behavior: 'smooth' }); return; }
    stopWatching();
    live = newLiveState(id);
    els.live.setAttribute('data-session-id', id);  // shares.js follows the watched session
    show(els.live, true);
    els.liveRef.textContent = '';
    els.livePhone.textContent = '';
    els.fixCount.textContent = '0';
    els.liveFrames.textContent = '0';
    setLastFix(null);
    disarmEnd();
    els.endSession.disabled = false;
    show(els.endSession, true);
    els.liveVideo.muted = true;
    els.unmute.textContent = 'Unmute';
    setVideoStatus('Waiting for video…');
    ensureLiveMap();
    resetLiveMap();
    if (liveMap) setTimeout(function () { if (liveMap) liveMap.map.invalidateSize(); }, 50);
    Object.keys(rows).forEach(function (rid) { rows[rid].li.classList.toggle('watching', rid === id); });
    if (sessions[id]) onLiveSession(sessions[id]);
    openWs();
    startFrameCounter();
    if (els.live.scrollIntoView) els.live.scrollIntoView({ block: 'start' });
  }

  function stopWatching() {
    if (!live) return;
    var l = live;
    live = null;
    l.ended = true;
    if (l.wsTimer) clearTimeout(l.wsTimer);
    if (l.ws) { try { l.ws.onclose = null; l.ws.close(); } catch (e) {} }
    stopViewer(l);
    if (l.frameTimer) clearInterval(l.frameTimer);
    if (l.endTimer) clearTimeout(l.endTimer);
    try { els.liveVideo.srcObject = null; } catch (e) {}
    els.live.removeAttribute('data-session-id');
    show(els.live, false);
    Object.keys(rows).forEach(function (rid) { rows[rid].li.classList.remove('watching'); });
  }

  function setVideoStatus(text) {
    els.liveVideoStatus.textContent = text || '';
    show(els.liveVideoStatus, !!text);
  }

  function onLiveSession(s) {
    if (!live || String(s.id) !== live.id) return;
    live.session = s;
    els.liveRef.textContent = s.incident_ref || '';
    els.livePhone.textContent = s.phone_masked || '';
    els.liveState.textContent = stateLabel(s.state);
    els.liveState.setAttribute('data-state', s.state || '');
    els.liveRecording.textContent = recordingProblem(s);
    show(els.liveRecording, !!els.liveRecording.textContent);
    els.live.setAttribute('data-mode', s.mode || 'video');
    els.live.setAttribute('data-state', s.state || '');
    if (isNum(s.fix_count) && s.fix_count > live.fixes) {
      els.fixCount.textContent = String(s.fix_count);
    }
    if (!live.lastFix && validFix(s.last_fix)) setLastFix(s.last_fix);
    var prev = live.prevState;
    live.prevState = s.state;
    if (s.state === 'ended') {
      onLiveEnded();
      return;
    }
    show(els.liveVideoBox, s.mode !== 'location');
    show(els.unmute, s.mode !== 'location');
    if (s.mode === 'location') return;
    if (s.state === 'live') {
      if (!live.viewer && !live.viewerTimer) startViewer();
      else if (live.viewer && prev && prev !== 'live' && live.viewerConnectedOnce) {
        // Caller reconnected: their media is new, so renegotiate our view of it.
        restartViewer(500);
      }
    } else if (!live.viewer) {
      setVideoStatus(s.state === 'reconnecting' ? 'Caller is reconnecting…' : 'Waiting for the caller to start sharing…');
    }
  }

  function onLiveEnded() {
    if (!live) return;
    stopViewer(live);
    if (live.ws) { try { live.ws.onclose = null; live.ws.close(); } catch (e) {} live.ws = null; }
    if (live.wsTimer) { clearTimeout(live.wsTimer); live.wsTimer = null; }
    var s = live.session || {};
    setVideoStatus('Session ended' + (s.ended_by ? ' by ' + s.ended_by : '') + '.');
    disarmEnd();
    show(els.endSession, false);
  }

  function setLastFix(fix) {
    if (!live) {
      els.lastFix.removeAttribute('data-lat');
      els.lastFix.removeAttribute('data-lon');
      els.lastFix.textContent = 'none yet';
      return;
    }
    live.lastFix = validFix(fix) ? fix : null;
    if (!live.lastFix) {
      els.lastFix.removeAttribute('data-lat');
      els.lastFix.removeAttribute('data-lon');
      els.lastFix.textContent = 'none yet';
      return;
    }
    els.lastFix.setAttribute('data-lat', String(fix.lat));
    els.lastFix.setAttribute('data-lon', String(fix.lon));
    updateLastFixText();
  }

  function updateLastFixText() {
    if (!live || !live.lastFix) return;
    var f = live.lastFix;
    var t = parseTime(f.received_at || f.device_time);
    var text = f.lat.toFixed(5) + ', ' + f.lon.toFixed(5);
    if (isNum(f.accuracy)) text += ' ±' + Math.round(f.accuracy) + ' m';
    if (isFinite(t)) text += ', ' + ago(Date.now() - t);
    els.lastFix.textContent = text;
  }

  function onFix(fix, pan) {
    if (!live || !validFix(fix)) return;
    live.fixes += 1;
    els.fixCount.textContent = String(Math.max(live.fixes, (live.session && isNum(live.session.fix_count)) ? live.session.fix_count : 0));
    setLastFix(fix);
    drawFix(fix, pan);
  }

  /* WebSocket: trail, fixes and state for the watched session. */
  function openWs() {
    var l = live;
    if (!l || l.ended || !window.WebSocket) return;
    var ws;
    try {
      ws = new WebSocket(wsUrl('/api/sessions/' + encodeURIComponent(l.id) + '/ws'));
    } catch (e) { scheduleWs(l); return; }
    l.ws = ws;
    ws.onopen = function () { l.wsAttempt = 0; };
    ws.onmessage = function (ev) {
      if (live !== l) return;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'trail') {
        l.fixes = 0;
        resetLiveMap();
        var fixes = Array.isArray(msg.fixes) ? msg.fixes : [];
        fixes.forEach(function (f) { onFix(f, false); });
        if (liveMap && fixes.length) {
          var b = liveMap.trail.getBounds();
          if (b.isValid()) {
            liveMap.fitted = true;
            liveMap.map.fitBounds(b.pad(0.3), { maxZoom: 17 });
          }
        }
        if (!fixes.length) els.fixCount.textContent = String(l.session && isNum(l.session.fix_count) ? l.session.fix_count : 0);
      } else if (msg.type === 'fix') {
        onFix(msg.fix, true);
      } else if (msg.type === 'state' && msg.session) {
        sessions[String(msg.session.id)] = msg.session;
        updateRow(String(msg.session.id));
        onLiveSession(msg.session);
      }
    };
    ws.onclose = function (ev) {
      if (live !== l || l.ended) return;
      l.ws = null;
      if (ev && ev.code === 4403) { setVideoStatus('Access ended.'); stopViewer(l); return; }
      if (ev && (ev.code === 4401 || ev.code === 4404)) return;
      if (l.session && l.session.state === 'ended') return;
      scheduleWs(l);
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleWs(l) {
    if (l.wsTimer || l.ended) return;
    var d = backoff(l.wsAttempt);
    l.wsAttempt += 1;
    l.wsTimer = setTimeout(function () { l.wsTimer = null; if (live === l) openWs(); }, d);
  }

  /* Viewer WebRTC (receive only). */
  function stopViewer(l) {
    if (!l) return;
    if (l.viewerTimer) { clearTimeout(l.viewerTimer); l.viewerTimer = null; }
    l.viewerGen += 1;
    if (l.viewer) {
      try { l.viewer.pc.ontrack = null; l.viewer.pc.onconnectionstatechange = null; l.viewer.pc.close(); } catch (e) {}
      l.viewer = null;
    }
  }

  function restartViewer(delay) {
    var l = live;
    if (!l) return;
    stopViewer(l);
    l.viewerTimer = setTimeout(function () { l.viewerTimer = null; if (live === l) startViewer(); }, delay);
  }

  function scheduleViewerRetry(l) {
    if (live !== l || l.ended || l.viewerTimer) return;
    if (l.session && l.session.state === 'ended') return;
    stopViewer(l);
    var d = backoff(l.viewerAttempt);
    l.viewerAttempt += 1;
    l.viewerTimer = setTimeout(function () { l.viewerTimer = null; if (live === l) startViewer(); }, d);
  }

  async function startViewer() {
    var l = live;
    if (!l || l.ended || l.viewer) return;
    if (!window.RTCPeerConnection) { setVideoStatus('This browser cannot show live video.'); return; }
    var gen = ++l.viewerGen;
    var v = { pc: null, stream: null, startedAt: Date.now() };
    l.viewer = v;
    setVideoStatus('Connecting to video…');
    try {
      var ice = await api('GET', '/api/sessions/' + encodeURIComponent(l.id) + '/ice');
      if (gen !== l.viewerGen || live !== l) return;
      var pc = new RTCPeerConnection({ iceServers: (ice && ice.ice_servers) || [] });
      v.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = function (ev) {
        if (gen !== l.viewerGen || live !== l) return;
        if (!v.stream) {
          v.stream = (typeof MediaStream === 'function') ? new MediaStream() : (ev.streams && ev.streams[0]);
        }
        try { if (v.stream.getTracks().indexOf(ev.track) === -1) v.stream.addTrack(ev.track); } catch (e) {}
        var video = els.liveVideo;
        if (video.srcObject !== v.stream) {
          addQualityBase();
          video.srcObject = v.stream;
        }
        var p = video.play();
        if (p && p.catch) p.catch(function () {});
        setVideoStatus('');
      };
      pc.onconnectionstatechange = function () {
        if (gen !== l.viewerGen || live !== l) return;
        var st = pc.connectionState;
        if (st === 'connected') {
          l.viewerAttempt = 0;
          l.viewerConnectedOnce = true;
          setVideoStatus('');
        } else if (st === 'failed' || st === 'closed') {
          setVideoStatus('Video connection lost. Retrying…');
          scheduleViewerRetry(l);
        } else if (st === 'disconnected') {
          setVideoStatus('Video interrupted…');
          setTimeout(function () {
            if (gen === l.viewerGen && live === l && pc.connectionState === 'disconnected') scheduleViewerRetry(l);
          }, 4000);
        }
      };
      var offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await waitForIce(pc);
      if (gen !== l.viewerGen || live !== l) return;
      var answer = await api('POST', '/api/sessions/' + encodeURIComponent(l.id) + '/viewers', {
        sdp: pc.localDescription.sdp, type: pc.localDescription.type
      });
      if (gen !== l.viewerGen || live !== l) return;
      await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type || 'answer' });
    } catch (e) {
      if (gen !== l.viewerGen || live !== l) return;
      if (e instanceof ApiError && e.status === 403) {
        setVideoStatus('You do not have permission to view this video.');
        stopViewer(l);
        return;
      }
      if (e instanceof ApiError && e.status === 410) {  // the share ended or the session did
        setVideoStatus('Access ended: ' + e.message + '.');
        stopViewer(l);
        return;
      }
      setVideoStatus('Video not available yet' + (e instanceof ApiError ? ' (' + e.message + ')' : '') + '. Retrying…');
      scheduleViewerRetry(l);
    }
  }

  /* Frame counter: bare integer in #live-frames. */
  function qualityFrames() {
    var video = els.liveVideo;
    try {
      if (typeof video.getVideoPlaybackQuality === 'function') return video.getVideoPlaybackQuality().totalVideoFrames || 0;
      if (typeof video.webkitDecodedFrameCount === 'number') return video.webkitDecodedFrameCount;
    } catch (e) {}
    return 0;
  }

  function addQualityBase() {
    if (!live) return;
    live.qBase += qualityFrames();
  }

  function startFrameCounter() {
    var l = live;
    var video = els.liveVideo;
    var hasRvfc = typeof video.requestVideoFrameCallback === 'function';
    function onFrame() {
      if (live !== l) return;
      l.rvfc += 1;
      video.requestVideoFrameCallback(onFrame);
    }
    if (hasRvfc) video.requestVideoFrameCallback(onFrame);
    l.lastFrameAt = Date.now();
    l.frameTimer = setInterval(function () {
      if (live !== l) return;
      var now = Date.now();
      var n = Math.max(l.rvfc, l.qBase + qualityFrames());
      if (n !== l.frames) {
        l.frames = n;
        l.lastFrameAt = now;
        l.stallRestarts = 0;
        els.liveFrames.textContent = String(n);
        return;
      }
      // Watchdog: video was flowing, the session is live, but frames stopped
      // (e.g. the caller reconnected and the server gave us a dead track).
      var s = l.session;
      var v = l.viewer;
      if (n > 0 && s && s.state === 'live' && s.mode !== 'location' && v && v.pc && !l.viewerTimer &&
          v.startedAt && now - v.startedAt > 8000 &&
          now - l.lastFrameAt > Math.min(MAX_BACKOFF_MS, 5000 * Math.pow(2, l.stallRestarts || 0))) {
        l.stallRestarts = (l.stallRestarts || 0) + 1;
        l.lastFrameAt = now;
        setVideoStatus('Video paused. Reconnecting…');
        restartViewer(0);
      }
    }, 500);
  }

  /* Two-step end button. */
  function disarmEnd() {
    if (live && live.endTimer) { clearTimeout(live.endTimer); live.endTimer = null; }
    if (live) live.endArmed = false;
    els.endSession.textContent = 'End session';
    els.endSession.classList.remove('armed');
    show(els.endSessionHint, false);
  }

  function onEndSessionClick() {
    var l = live;
    if (!l) return;
    if (!l.endArmed) {
      l.endArmed = true;
      els.endSession.textContent = 'Confirm end';
      els.endSession.classList.add('armed');
      show(els.endSessionHint, true);
      l.endTimer = setTimeout(function () { if (live === l) disarmEnd(); }, 6000);
      return;
    }
    disarmEnd();
    endSession(l.id, els.endSession);
  }

  /* ---------------- recordings: search, playback, export ---------------- */

  var recordings = {};
  var recQuery = '';
  var playback = null;        // { id, fixes, times, part, marker }
  var exportTimer = null;

  function searchParams() {
    var f = els.recordingSearch.elements;
    var q = [];
    ['incident_ref', 'phone', 'area'].forEach(function (name) {
      var v = f[name].value.trim();
      if (v) q.push(name + '=' + encodeURIComponent(v));
    });
    if (f.from.value) q.push('from=' + encodeURIComponent(f.from.value + 'T00:00:00'));
    if (f.to.value) q.push('to=' + encodeURIComponent(f.to.value + 'T23:59:59'));
    return q.join('&');
  }

  async function loadRecordings() {
    if (!me) return;
    try {
      var data = await api('GET', '/api/recordings' + (recQuery ? '?' + recQuery : ''));
      els.searchError.textContent = '';
      renderRecordings((data && data.recordings) || []);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        els.recordingsEmpty.textContent = 'You do not have access to recordings.';
        show(els.recordingsEmpty, true);
        show(els.recordingSearch, false);
      } else if (e instanceof ApiError) {
        els.searchError.textContent = e.message + (e.data && e.data.fields ? ': ' + JSON.stringify(e.data.fields) : '');
      }
    }
  }

  function onSearchSubmit(ev) {
    ev.preventDefault();
    recQuery = searchParams();
    recSig = '';
    show(els.exportPhone, !!els.recordingSearch.elements.phone.value.trim());
    loadRecordings();
  }

  function areaFromMap() {
    var m = playbackMap || liveMap;
    if (!m) { els.searchError.textContent = 'Open a map first (play a recording or watch a session).'; return; }
    var b = m.map.getBounds();
    els.recordingSearch.elements.area.value = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]
      .map(function (x) { return x.toFixed(5); }).join(',');
  }

  function renderRecordings(list) {
    var sig = JSON.stringify(list);
    if (sig === recSig) return;
    recSig = sig;
    var ticked = {};
    Array.prototype.forEach.call(els.recordings.querySelectorAll('input.pick:checked'), function (c) { ticked[c.value] = true; });
    recordings = {};
    clear(els.recordings);
    var mayExport = me && Array.isArray(me.roles) && me.roles.some(function (r) { return r === 'investigator' || r === 'supervisor' || r === 'admin'; });
    list.forEach(function (r) {
      var id = String(r.session_id);
      recordings[id] = r;
      var li = mk('li', 'recording-row');
      li.setAttribute('data-session-id', id);
      var info = mk('div', 'row-main');
      if (mayExport) {
        var pick = mk('input', 'pick');
        pick.type = 'checkbox';
        pick.value = id;
        pick.checked = !!ticked[id];
        pick.setAttribute('aria-label', 'Select for export');
        info.appendChild(pick);
      }
      info.appendChild(mk('span', 'ref', r.incident_ref || '(no ref)'));
      info.appendChild(mk('span', 'muted', fmtDate(r.started_at)));
      var dur = fmtDuration(r.duration_s);
      if (dur) info.appendChild(mk('span', 'muted', dur));
      if (!(r.parts || []).length) info.appendChild(mk('span', 'muted', 'location only'));
      if (r.status !== 'closed') info.appendChild(mk('span', 'muted', 'still recording'));
      var btn = mk('button', 'btn btn-small play', 'Play');
      btn.type = 'button';
      btn.addEventListener('click', function () { playRecording(id); });
      li.appendChild(info);
      li.appendChild(btn);
      if (mayExport && r.bundle_url) {
        var dl = mk('a', 'btn btn-small btn-ghost download', 'Download original');
        dl.href = r.bundle_url;
        dl.setAttribute('download', '');
        li.appendChild(dl);
      }
      els.recordings.appendChild(li);
    });
    els.recordingsEmpty.textContent = recQuery ? 'No recordings match.' : 'No recordings yet.';
    show(els.recordingsEmpty, list.length === 0);
    show(els.exportForm, !!mayExport && list.length > 0);
  }

  /* The marker follows the video: a part's first frame has a server wall-clock time, and
     each fix its server receive time, so the fix shown is the last one received by then. */
  function syncPlaybackMarker() {
    if (!playback || !playback.part || !playback.fixes.length) return;
    var start = playback.part.first_frame_wall_clock;
    if (!isNum(start)) return;
    var at = (start + (els.playbackVideo.currentTime || 0)) * 1000;
    var i = 0;
    while (i + 1 < playback.times.length && playback.times[i + 1] <= at) i++;
    var f = playback.fixes[i];
    els.playbackPosition.textContent = f.lat.toFixed(5) + ', ' + f.lon.toFixed(5) +
      (isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '') +
      (f.received_at ? ' at ' + fmtDate(f.received_at) : '');
    els.playbackPosition.setAttribute('data-lat', String(f.lat));
    els.playbackPosition.setAttribute('data-lon', String(f.lon));
    els.playbackPosition.setAttribute('data-index', String(i));
    if (playback.marker) playback.marker.setLatLng([f.lat, f.lon]);
  }

  function playPart(part) {
    var v = els.playbackVideo;
    v.pause();
    if (playback) playback.part = part;
    v.src = part.url;
    var p = v.play();
    if (p && p.catch) p.catch(function () {});
  }

  /* A recording is several parts: playback runs on from one to the next. */
  function playNextPart() {
    if (!playback || !playback.part) return;
    var next = playback.parts[playback.parts.indexOf(playback.part) + 1];
    if (next) playPart(next);
  }

  async function playRecording(id) {
    var r = recordings[id];
    if (!r) return;
    show(els.playback, true);
    els.playbackRef.textContent = (r.incident_ref || '') + (r.started_at ? ' – ' + fmtDate(r.started_at) : '');
    els.playback.setAttribute('data-session-id', id);
    els.playbackPosition.textContent = '–';
    ['data-lat', 'data-lon', 'data-index'].forEach(function (a) { els.playbackPosition.removeAttribute(a); });
    var parts = Array.isArray(r.parts) ? r.parts.filter(function (p) { return p && p.url; }) : [];
    playback = { id: id, fixes: [], times: [], parts: parts, part: parts[0] || null, marker: null };
    clear(els.playbackParts);
    var v = els.playbackVideo;
    if (parts.length) {
      show(v, true);
      playPart(parts[0]);
      if (parts.length > 1) {
        parts.forEach(function (p, i) {
          var b = mk('button', 'btn btn-small part', 'Part ' + (i + 1) + (isNum(p.duration_s) ? ' (' + fmtDuration(p.duration_s) + ')' : ''));
          b.type = 'button';
          b.addEventListener('click', function () { playPart(p); });
          els.playbackParts.appendChild(b);
        });
      }
    } else {
      try { v.pause(); v.removeAttribute('src'); v.load(); } catch (e) {}
      show(v, false);
      els.playbackParts.appendChild(mk('p', 'muted', 'No video was recorded for this session.'));
    }

    if (!playbackMap) playbackMap = makeMap(els.playbackMap);
    if (playbackMap) {
      setTimeout(function () { playbackMap.map.invalidateSize(); }, 50);
      if (playbackLayer) { playbackMap.map.removeLayer(playbackLayer); playbackLayer = null; }
    }
    els.playbackTrailStatus.textContent = 'Loading location trail…';
    try {
      var data = await api('GET', r.trail_url);
      if (!playback || playback.id !== id) return;
      var fixes = ((data && data.fixes) || []).filter(validFix);
      playback.fixes = fixes;
      playback.times = fixes.map(function (f) { return parseTime(f.received_at); });
      els.playbackTrailStatus.textContent = fixes.length ? fixes.length + ' location fixes' : 'No location was recorded.';
      if (!fixes.length) return;
      syncPlaybackMarker();
      if (!playbackMap) return;
      var lls = fixes.map(function (f) { return [f.lat, f.lon]; });
      playbackLayer = L.featureGroup();
      L.polyline(lls, { color: '#1d70b8', weight: 4 }).addTo(playbackLayer);
      L.circleMarker(lls[0], { radius: 7, color: '#00703c', fillOpacity: 0.9 }).bindTooltip('Start').addTo(playbackLayer);
      playback.marker = L.marker(lls[0], { title: 'Position at this moment of the video' }).addTo(playbackLayer);
      playbackLayer.addTo(playbackMap.map);
      playbackMap.map.fitBounds(playbackLayer.getBounds().pad(0.3), { maxZoom: 17 });
      syncPlaybackMarker();
    } catch (e) {
      els.playbackTrailStatus.textContent = 'Could not load the location trail.';
    }
  }

  function exportBody(extra) {
    var f = els.exportForm.elements;
    return Object.assign({ recipient: f.recipient.value.trim(), purpose: f.purpose.value.trim() }, extra);
  }

  async function startExport(body) {
    els.exportError.textContent = '';
    if (!body.recipient || !body.purpose) { els.exportError.textContent = 'Say who receives the package and why.'; return; }
    show(els.exportDownload, false);
    try {
      var job = await api('POST', '/api/exports', body);
      show(els.exportStatus, true);
      followExport(job);
    } catch (e) {
      els.exportError.textContent = e instanceof ApiError ? e.message : 'Cannot reach the server.';
    }
  }

  function followExport(job) {
    if (exportTimer) clearTimeout(exportTimer);
    els.exportProgress.max = Math.max(1, job.total_bytes || 1);
    els.exportProgress.value = job.done_bytes || 0;
    els.exportStatus.setAttribute('data-state', job.state);
    if (job.state === 'running') {
      els.exportState.textContent = 'Exporting ' + job.session_ids.length + ' recording(s)… ' +
        Math.round(100 * (job.done_bytes || 0) / Math.max(1, job.total_bytes || 1)) + '%';
      exportTimer = setTimeout(async function () {
        try { followExport(await api('GET', '/api/exports/' + job.export_id)); }
        catch (e) { els.exportError.textContent = 'Lost track of the export: ' + (e.message || e); }
      }, 500);
    } else if (job.state === 'done') {
      els.exportState.textContent = 'Ready: ' + job.session_ids.length + ' recording(s) for ' + job.recipient + '.';
      els.exportDownload.href = job.download_url;
      show(els.exportDownload, true);
    } else {
      els.exportState.textContent = 'Export failed: ' + (job.error || 'unknown error');
    }
  }

  function onExportSubmit(ev) {
    ev.preventDefault();
    var ids = Array.prototype.map.call(els.recordings.querySelectorAll('input.pick:checked'), function (c) { return c.value; });
    if (!ids.length) { els.exportError.textContent = 'Tick the recordings to export.'; return; }
    startExport(exportBody({ session_ids: ids }));
  }

  function onExportPhone() {
    var phone = els.recordingSearch.elements.phone.value.trim();
    if (!phone) { els.exportError.textContent = 'Search by phone number first.'; return; }
    startExport(exportBody({ phone: phone }));
  }

  /* ---------------- init ---------------- */

  function init() {
    els = {
      boot: $('boot-message'), globalError: $('global-error'),
      forceName: $('force-name'), userBox: $('user-box'), username: $('username'), userRoles: $('user-roles'), logout: $('logout'),
      loginSection: $('login-section'), loginForm: $('login-form'), loginError: $('login-error'),
      app: $('app'), sendForm: $('send-form'), sendError: $('send-error'), sendSuccess: $('send-success'),
      sessions: $('sessions'), sessionsEmpty: $('sessions-empty'),
      outboxPanel: $('outbox-panel'), outbox: $('outbox'), outboxEmpty: $('outbox-empty'),
      live: $('live'), liveRef: $('live-ref'), livePhone: $('live-phone'), liveState: $('live-state'), liveRecording: $('live-recording'), closeLive: $('close-live'),
      liveVideoBox: $('live-video-box'), liveVideo: $('live-video'), liveVideoStatus: $('live-video-status'),
      unmute: $('unmute'), liveFrames: $('live-frames'), fixCount: $('fix-count'), lastFix: $('last-fix'),
      liveMap: $('live-map'), endSession: $('end-session'), endSessionHint: $('end-session-hint'),
      recordings: $('recordings'), recordingsEmpty: $('recordings-empty'), refreshRecordings: $('refresh-recordings'),
      playback: $('playback'), playbackRef: $('playback-ref'), playbackVideo: $('playback-video'),
      playbackParts: $('playback-parts'), playbackTrailStatus: $('playback-trail-status'), playbackMap: $('playback-map'),
      playbackPosition: $('playback-position'), recordingSearch: $('recording-search'), searchError: $('search-error'),
      areaFromMap: $('area-from-map'), exportForm: $('export-form'), exportError: $('export-error'),
      exportPhone: $('export-phone'), exportStatus: $('export-status'), exportProgress: $('export-progress'),
      exportState: $('export-state'), exportDownload: $('export-download')
    };

    if (!window.fetch || !window.Promise || !window.JSON) {
      els.boot.textContent = 'This browser is too old for the SceneLink console. Please use a current version of Chrome, Edge, Firefox or Safari.';
      return;
    }
    show(els.boot, false);

    els.loginForm.addEventListener('submit', onLoginSubmit);
    els.logout.addEventListener('click', logout);
    els.sendForm.addEventListener('submit', onSendSubmit);
    els.closeLive.addEventListener('click', stopWatching);
    els.endSession.addEventListener('click', onEndSessionClick);
    els.refreshRecordings.addEventListener('click', function () { recSig = ''; loadRecordings(); });
    els.recordingSearch.addEventListener('submit', onSearchSubmit);
    els.areaFromMap.addEventListener('click', areaFromMap);
    els.exportForm.addEventListener('submit', onExportSubmit);
    els.exportPhone.addEventListener('click', onExportPhone);
    els.playbackVideo.addEventListener('timeupdate', syncPlaybackMarker);
    els.playbackVideo.addEventListener('ended', playNextPart);
    els.playbackVideo.addEventListener('seeked', syncPlaybackMarker);
    els.unmute.addEventListener('click', function () {
      var v = els.liveVideo;
      v.muted = !v.muted;
      els.unmute.textContent = v.muted ? 'Unmute' : 'Mute';
      var p = v.play();
      if (p && p.catch) p.catch(function () {});
    });
    els.liveVideo.addEventListener('volumechange', function () {
      els.unmute.textContent = els.liveVideo.muted ? 'Unmute' : 'Mute';
    });

    checkMe();
  }

  window.addEventListener('error', function (ev) {
    if (els.globalError) globalError('Something went wrong in the console page' + (ev && ev.message ? ': ' + ev.message : '') + '. Reload if it misbehaves.');
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
