/* SceneLink caller page. Plain ES2017, no build step, no inline code (CSP script-src 'self').
   Requests and the ICE wait come from /console/static/api.js (window.SceneLink), loaded first. */
(function () {
  'use strict';

  var CONSENT_VERSION = 'v1';
  var FIX_REPEAT_MS = 10000;
  var MAX_BACKOFF_S = 10;
  var MAX_QUEUE = 100;

  var MSG = {
    connecting: 'Connecting…',
    live: 'You are live. The call handler can see and hear you.',
    liveLocation: 'You are live. The call handler can see your location.',
    reconnecting: 'Signal lost. Reconnecting… Please stay on the call.',
    endedServer: 'The call handler has ended the video. Please stay on the call.',
    endedServerLocation: 'The call handler has stopped location sharing. Please stay on the call.',
    stopped: 'You have stopped sharing. Please stay on the call.',
    expired: 'This link no longer works. Please stay on the line with the call handler; they can send you a new link.',
    unsupported: 'Sorry, this phone or browser cannot share from this page. Please stay on the call – the call handler is still with you.',
    error: 'Sorry, something went wrong. Please stay on the call – the call handler is still with you.',
    locationDenied: 'Location is blocked, so the call handler cannot see where you are. If you can, allow location for this page in your settings. Please stay on the call.',
    cameraDenied: 'The camera or microphone is blocked, so only your location is being shared. Please stay on the call.'
  };

  var els = {};
  var token = '';
  var api = null;             // SceneLink.client with the link's token, made by init()
  var mode = 'video';
  var config = null;
  var stream = null;
  var pc = null;
  var dc = null;
  var watchId = null;
  var lastFix = null;
  var fixQueue = [];
  var repeatTimer = null;
  var retryTimer = null;
  var attempt = 0;
  var ended = false;
  var connecting = false;
  var generation = 0;
  var wakeLock = null;

  function $(id) { return document.getElementById(id); }

  function show(el, on) {
    if (!el) return;
    if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', '');
  }

  function setState(state, text, reason) {
    var s = els.status;
    if (!s) return;
    s.setAttribute('data-state', state);
    if (reason) s.setAttribute('data-reason', reason); else s.removeAttribute('data-reason');
    s.textContent = text;
    document.body.setAttribute('data-state', state);
  }

  function notice(text) {
    if (!els.notice) return;
    els.notice.textContent = text || '';
    show(els.notice, !!text);
  }

  /* Show a terminal, plain message even if we never got past the consent screen. */
  function fatal(text, reason) {
    ended = true;
    show(els.consent, false);
    show(els.declined, false);
    show(els.sharing, true);
    show(els.stop, false);
    show(els.accuracy, false);
    show(els.preview, false);
    setState('ended', text, reason || 'error');
    cleanup();
  }

  function getToken() {
    var parts = (location.pathname || '').split('/').filter(function (p) { return p.length > 0; });
    var last = parts.length ? parts[parts.length - 1] : '';
    try { return decodeURIComponent(last); } catch (e) { return last; }
  }

  function validMode(m) { return m === 'video' || m === 'location'; }

  function setMode(m) {
    mode = m;
    document.body.setAttribute('data-mode', m);
  }

  /* The link's token is its credential. Unknown, expired or used up (401, 404, 410): this page's
     "link no longer works" state, wherever the request was made; stopping is the exception, as
     the caller who pressed "Stop sharing" is told that they stopped. */
  function makeApi() {
    return window.SceneLink.client({
      token: token, csrf: false, authLostOn: [401, 404, 410],
      onAuthLost: function (err, path) {
        if (path !== '/api/caller/end' && !ended) fatal(MSG.expired, 'expired');
      }
    });
  }

  function supported() {
    return !!(window.fetch && window.Promise && window.JSON && window.RTCPeerConnection &&
      navigator.geolocation && typeof navigator.geolocation.watchPosition === 'function' &&
      (mode === 'location' || (navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function')));
  }

  /* ---------------- location ---------------- */

  function num(v) { return (typeof v === 'number' && isFinite(v)) ? v : null; }

  function onPosition(pos) {
    var c = pos.coords;
    var fix = {
      type: 'fix',
      lat: c.latitude,
      lon: c.longitude,
      accuracy: num(c.accuracy),
      altitude: num(c.altitude),
      altitude_accuracy: num(c.altitudeAccuracy),
      heading: num(c.heading),
      speed: num(c.speed),
      timestamp: (typeof pos.timestamp === 'number' && pos.timestamp > 0) ? pos.timestamp : Date.now()
    };
    lastFix = fix;
    if (els.accuracy) {
      els.accuracy.textContent = fix.accuracy === null ? 'Location found' :
        'Location accuracy: ±' + Math.round(fix.accuracy) + ' m';
    }
    sendFix(fix);
  }

  function onPositionError(err) {
    // Code 2 (position unavailable) and 3 (timeout) are transient: keep watching.
    if (err && err.code === 1) {
      notice(MSG.locationDenied);
      if (els.accuracy) els.accuracy.textContent = 'Location accuracy: location blocked';
    }
  }

  function startLocation() {
    if (watchId !== null) return;
    try {
      watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
        enableHighAccuracy: true, maximumAge: 0, timeout: 30000
      });
    } catch (e) {
      notice(MSG.locationDenied);
    }
  }

  function channelOpen() { return dc && dc.readyState === 'open'; }

  function sendRaw(obj) {
    try { dc.send(JSON.stringify(obj)); return true; } catch (e) { return false; }
  }

  function sendFix(fix) {
    if (channelOpen()) {
      if (sendRaw(fix)) return;
    }
    fixQueue.push(fix);
    if (fixQueue.length > MAX_QUEUE) fixQueue.shift();
  }

  function flushQueue() {
    var sentAny = false;
    while (fixQueue.length && channelOpen()) {
      if (!sendRaw(fixQueue[0])) break;
      fixQueue.shift();
      sentAny = true;
    }
    if (!sentAny && lastFix && channelOpen()) sendRaw(lastFix);
  }

  function startRepeat() {
    if (repeatTimer) return;
    repeatTimer = setInterval(function () {
      if (lastFix && channelOpen()) sendRaw(lastFix);
    }, FIX_REPEAT_MS);
  }

  /* ---------------- media ---------------- */

  async function startMedia() {
    if (mode !== 'video') return;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: true
      });
    } catch (e) {
      // Camera/mic refused or missing: location is still worth sharing.
      stream = null;
      notice(MSG.cameraDenied);
      return;
    }
    var v = els.preview;
    if (v) {
      v.muted = true;
      v.setAttribute('playsinline', '');
      v.setAttribute('muted', '');
      try { v.srcObject = stream; } catch (e) { /* very old browsers */ }
      show(v, true);
      var p = v.play && v.play();
      if (p && p.catch) p.catch(function () {});
    }
  }

  function stopMedia() {
    if (stream) {
      stream.getTracks().forEach(function (t) { try { t.stop(); } catch (e) {} });
      stream = null;
    }
    if (els.preview) {
      try { els.preview.srcObject = null; } catch (e) {}
      show(els.preview, false);
    }
  }

  function requestWakeLock() {
    try {
      if (navigator.wakeLock && navigator.wakeLock.request) {
        navigator.wakeLock.request('screen').then(function (l) {
          wakeLock = l;
          if (l.addEventListener) l.addEventListener('release', function () { if (wakeLock === l) wakeLock = null; });
        }, function () {});
      }
    } catch (e) {}
  }

  /* ---------------- WebRTC ---------------- */

  function preferCodec(transceiver, codec) {
    if (!codec || !transceiver) return;
    if (!window.RTCRtpTransceiver || !RTCRtpTransceiver.prototype ||
        typeof RTCRtpTransceiver.prototype.setCodecPreferences !== 'function') return;
    if (!window.RTCRtpSender || typeof RTCRtpSender.getCapabilities !== 'function') return;
    try {
      var caps = RTCRtpSender.getCapabilities('video');
      if (!caps || !caps.codecs) return;
      var want = 'video/' + String(codec).toLowerCase();
      var first = [];
      var rest = [];
      caps.codecs.forEach(function (c) {
        if (String(c.mimeType).toLowerCase() === want) first.push(c); else rest.push(c);
      });
      if (!first.length) return;
      // rtx/red/fec entries stay in "rest", so retransmission is kept.
      transceiver.setCodecPreferences(first.concat(rest));
    } catch (e) { /* keep browser default */ }
  }

  function closePc() {
    if (dc) {
      try { dc.onopen = dc.onmessage = dc.onclose = null; dc.close(); } catch (e) {}
      dc = null;
    }
    if (pc) {
      try { pc.onconnectionstatechange = pc.oniceconnectionstatechange = null; pc.close(); } catch (e) {}
      pc = null;
    }
  }

  function liveText() { return stream ? MSG.live : MSG.liveLocation; }

  function scheduleReconnect() {
    if (ended || retryTimer) return;
    var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, attempt)) * 1000;
    attempt += 1;
    setState('reconnecting', MSG.reconnecting);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (connecting) { scheduleReconnect(); return; }
      connect();
    }, delay);
  }

  function cancelReconnect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
  }

  function onServerMessage(ev) {
    var msg = null;
    try { msg = JSON.parse(typeof ev.data === 'string' ? ev.data : ''); } catch (e) { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'ended') {
      finish(mode === 'location' || !stream ? MSG.endedServerLocation : MSG.endedServer, 'server');
    }
  }

  function watchConnection(conn, gen) {
    function handle(st) {
      if (gen !== generation || ended) return;
      if (st === 'connected' || st === 'completed') {
        cancelReconnect();
        attempt = 0;
        setState('live', liveText());
      } else if (st === 'disconnected' || st === 'failed' || st === 'closed') {
        scheduleReconnect();
      }
    }
    if ('onconnectionstatechange' in conn) {
      conn.onconnectionstatechange = function () { handle(conn.connectionState); };
    } else {
      // Older Safari: only ICE connection state is available.
      conn.oniceconnectionstatechange = function () { handle(conn.iceConnectionState); };
    }
  }

  async function connect() {
    if (ended || connecting) return;
    connecting = true;
    generation += 1;
    var gen = generation;
    closePc();
    if (attempt === 0) setState('connecting', MSG.connecting);
    try {
      var conn = new RTCPeerConnection({ iceServers: (config && config.ice_servers) || [], iceTransportPolicy: (config && config.ice_transport_policy) || 'all' });
      pc = conn;
      watchConnection(conn, gen);

      if (stream) {
        stream.getTracks().forEach(function (track) {
          if (typeof conn.addTransceiver === 'function') {
            var tr = conn.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
            if (track.kind === 'video') preferCodec(tr, config && config.codec);
          } else {
            conn.addTrack(track, stream);
          }
        });
      }

      var channel = conn.createDataChannel('location', { ordered: true });
      dc = channel;
      channel.onopen = function () {
        if (gen !== generation) return;
        flushQueue();
        startRepeat();
      };
      channel.onmessage = onServerMessage;

      var offer = await conn.createOffer();
      await conn.setLocalDescription(offer);
      await window.SceneLink.waitForIce(conn);
      if (gen !== generation || ended) return;

      var answer = await api('POST', '/api/caller/offer', {
        sdp: conn.localDescription.sdp,
        type: conn.localDescription.type,
        consent_version: CONSENT_VERSION
      });
      if (gen !== generation || ended) return;
      if (!answer || !answer.sdp) throw new Error('no answer');
      await conn.setRemoteDescription({ sdp: answer.sdp, type: answer.type || 'answer' });
    } catch (e) {
      if (gen !== generation || ended) return;
      if (e instanceof window.SceneLink.ApiError) {
        if (e.status === 409) { finish(MSG.endedServer, 'server'); return; }
        if (e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          finish(MSG.error, 'error'); return;
        }
      }
      scheduleReconnect();
    } finally {
      connecting = false;
    }
  }

  /* ---------------- lifecycle ---------------- */

  function cleanup() {
    cancelReconnect();
    if (repeatTimer) { clearInterval(repeatTimer); repeatTimer = null; }
    if (watchId !== null) {
      try { navigator.geolocation.clearWatch(watchId); } catch (e) {}
      watchId = null;
    }
    generation += 1;
    closePc();
    stopMedia();
    if (wakeLock) { try { wakeLock.release(); } catch (e) {} wakeLock = null; }
  }

  function finish(text, reason) {
    ended = true;
    cleanup();
    show(els.stop, false);
    setState('ended', text, reason);
  }

  async function stopSharing() {
    if (ended) return;
    els.stop.disabled = true;
    els.stop.textContent = 'Stopping…';
    try {
      await Promise.race([
        api('POST', '/api/caller/end', {}),
        new Promise(function (resolve) { setTimeout(resolve, 4000); })
      ]);
    } catch (e) { /* stop locally anyway */ }
    finish(MSG.stopped, 'caller');
  }

  async function onAgree() {
    show(els.consent, false);
    show(els.declined, false);
    show(els.sharing, true);
    setState('connecting', MSG.connecting);
    els.stop.focus && els.stop.focus();

    if (!api) { fatal(MSG.error, 'error'); return; }  // api.js did not load
    if (!supported()) { fatal(MSG.unsupported, 'unsupported'); return; }

    try {
      config = await api('GET', '/api/caller/config');
    } catch (e) {
      if (!ended) fatal(MSG.error, 'error');  // a dead link has already said so
      return;
    }
    if (config && validMode(config.mode)) setMode(config.mode);
    if (mode === 'video' && !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      fatal(MSG.unsupported, 'unsupported'); return;
    }

    startLocation();
    await startMedia();
    if (ended) return;
    requestWakeLock();
    connect();
  }

  function onDecline() {
    show(els.consent, false);
    show(els.declined, true);
  }

  function onReconsider() {
    show(els.declined, false);
    show(els.consent, true);
  }

  function init() {
    els = {
      consent: $('consent'), declined: $('declined'), sharing: $('sharing'),
      status: $('status'), accuracy: $('accuracy'), notice: $('notice'),
      preview: $('preview'), stop: $('stop'), agree: $('agree'), decline: $('decline'),
      reconsider: $('reconsider'), nojs: $('nojs'), title: $('title')
    };
    show(els.nojs, false);
    document.documentElement.className += ' js';

    var m = document.body.getAttribute('data-mode');
    setMode(validMode(m) ? m : 'video');
    var force = document.body.getAttribute('data-force') || '';
    if (!force || force.indexOf('{{') !== -1) {
      // Template not filled in (should not happen): show a neutral heading.
      document.body.setAttribute('data-force', '');
      if (els.title) els.title.textContent = 'Share your location' + (mode === 'video' ? ' and video' : '');
      document.title = els.title ? els.title.textContent : document.title;
    }

    token = getToken();
    if (!token) { fatal(MSG.expired, 'expired'); return; }
    if (window.SceneLink && window.SceneLink.client) api = makeApi();

    els.agree.addEventListener('click', function () {
      els.agree.disabled = true;
      onAgree().catch(function () { if (!ended) fatal(MSG.error, 'error'); });
    });
    els.decline.addEventListener('click', onDecline);
    if (els.reconsider) els.reconsider.addEventListener('click', function () {
      els.agree.disabled = false;
      onReconsider();
    });
    els.stop.addEventListener('click', function () { stopSharing(); });

    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible' && !ended && stream && !wakeLock) requestWakeLock();
    });
  }

  window.addEventListener('error', function () {
    // Last resort: never leave a frightened caller with a dead page.
    if (els.status && !ended && els.sharing && !els.sharing.hasAttribute('hidden')) {
      notice(MSG.error);
    } else if (els.nojs) {
      show(els.nojs, true);
    }
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
