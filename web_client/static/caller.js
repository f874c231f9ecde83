/* SceneLink caller page. Plain ES2017, no build step, no inline code (CSP script-src 'self').
   Requests and the ICE wait come from /console/static/api.js (window.SceneLink), loaded first.

   The capture ladder: camera and microphone; else the camera alone (audio stays on the voice
   call); else location alone; else, where this browser has no WebRTC, location over HTTPS.
   Every change to what is shared (tracks ended or muted, the page hidden or frozen, the
   network lost) is reported to the server at once as one caller_state object. */
(function () {
  'use strict';

  var CONSENT_VERSION = 'v1';
  var FIX_REPEAT_MS = 10000;
  var MAX_BACKOFF_S = 10;
  var MAX_QUEUE = 100;
  var HEALTH_MS = 1000;        // how often tracks are looked at (stop() fires no 'ended')
  var SILENT_CHECKS = 4;       // this many digitally silent looks in a row: microphone busy
  var REACQUIRE_RETRY_MS = 3000;
  var STATE_PATH = '/api/caller/state';
  var FIXES_PATH = '/api/caller/fixes';
  var END_PATH = '/api/caller/end';

  // Every word the caller reads comes from the language catalogue (i18n.js, loaded first).
  var I18n = window.SceneLinkI18n;

  var els = {};
  var token = '';
  var api = null;             // SceneLink.client with the link's token, made by init()
  var mode = 'video';
  var config = null;
  var stream = null;          // what is being sent: up to one video and one audio track
  var pc = null;
  var dc = null;
  var watchId = null;
  var lastFix = null;
  var fixQueue = [];
  var repeatTimer = null;
  var retryTimer = null;
  var healthTimer = null;
  var reacquireTimer = null;
  var attempt = 0;
  var ended = false;          // for good: the session ended, the link is dead
  var stopped = false;        // the caller pressed Stop; they may start again
  var sharing = false;        // between Agree (or Start again) and Stop/end
  var connecting = false;
  var reconnectWanted = false;
  var reacquiring = false;
  var generation = 0;
  var wakeLock = null;
  var httpsFixes = false;     // no WebRTC here: fixes go by POST
  var audioCtx = null;
  var analyser = null;
  var silentLooks = 0;

  var state = {
    type: 'caller_state', camera: 'off', microphone: 'off', location: 'off',
    page: 'visible', network: 'online', webrtc: true, declined: false
  };
  var sentState = '';         // the last state the server has (as JSON)
  var postingState = false;
  var postAgain = false;

  function $(id) { return document.getElementById(id); }

  function show(el, on) {
    if (!el) return;
    if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', '');
  }

  function focus(el) {
    try { if (el && el.focus) el.focus(); } catch (e) {}
  }

  function setState(st, key, reason) {
    var s = els.status;
    if (!s) return;
    s.setAttribute('data-state', st);
    if (reason) s.setAttribute('data-reason', reason); else s.removeAttribute('data-reason');
    I18n.put(s, key);
    document.body.setAttribute('data-state', st);
  }

  function notice(key) {
    if (!els.notice) return;
    I18n.put(els.notice, key || '');
    show(els.notice, !!key);
  }

  /* Show a terminal, plain message even if we never got past the consent screen. */
  function fatal(key, reason) {
    ended = true;
    show(els.consent, false);
    show(els.declined, false);
    show(els.sharing, true);
    show(els.stop, false);
    show(els.stopConfirm, false);
    show(els.restart, false);
    show(els.retryCamera, false);
    show(els.accuracy, false);
    show(els.preview, false);
    setState('ended', key, reason || 'error');
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
     the caller who pressed "Stop sharing" is told that they stopped, and so are state reports
     (a caller who declined stays on "That's fine"; a server without the route is no reason). */
  function makeApi() {
    return window.SceneLink.client({
      token: token, csrf: false, authLostOn: [401, 404, 410],
      onAuthLost: function (err, path) {
        if (path === END_PATH || path === STATE_PATH || ended) return;
        if (path === FIXES_PATH && err.status === 404) return;
        fatal('status.expired', 'expired');
      }
    });
  }

  function hasWebrtc() { return typeof window.RTCPeerConnection === 'function'; }
  function hasCamera() {
    return !!(navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function');
  }
  function hasGeo() {
    return !!(navigator.geolocation && typeof navigator.geolocation.watchPosition === 'function');
  }

  /* ---------------- the caller's state, reported ---------------- */

  function pageState() {
    return document.visibilityState === 'hidden' ? 'hidden' : 'visible';
  }

  function channelOpen() { return dc && dc.readyState === 'open'; }

  function sendRaw(obj) {
    try { dc.send(JSON.stringify(obj)); return true; } catch (e) { return false; }
  }

  /* Set parts of the state; anything changed goes to the server at once. */
  function report(changes, forcePost) {
    if (changes) {
      Object.keys(changes).forEach(function (k) { state[k] = changes[k]; });
    }
    var text = JSON.stringify(state);
    if (text === sentState && !forcePost) return;
    if (!forcePost && channelOpen() && sendRaw(state)) { sentState = text; return; }
    postState();
  }

  function postState() {
    if (!api || ended) return;
    if (postingState) { postAgain = true; return; }
    postingState = true;
    postAgain = false;
    var text = JSON.stringify(state);
    api('POST', STATE_PATH, JSON.parse(text)).then(function () {
      sentState = text;
    }, function () {
      // Offline or refused: sent again when the channel opens or the network returns.
    }).then(function () {
      postingState = false;
      if (postAgain || JSON.stringify(state) !== sentState) {
        if (channelOpen() && sendRaw(state)) { sentState = JSON.stringify(state); postAgain = false; return; }
        if (postAgain) postState();
      }
    });
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
    if (fix.accuracy === null) I18n.put(els.accuracy, 'accuracy.found');
    else I18n.put(els.accuracy, 'accuracy.metres', { metres: Math.round(fix.accuracy) });
    if (state.location !== 'on') report({ location: 'on' });
    sendFix(fix);
  }

  function onPositionError(err) {
    // Code 2 (position unavailable) and 3 (timeout) are transient: keep watching.
    if (err && err.code === 1) {
      notice('step.location_denied');
      I18n.put(els.accuracy, 'accuracy.blocked');
      report({ location: 'refused' });
    } else if (err && err.code === 2 && state.location !== 'on') {
      report({ location: 'unavailable' });
    }
  }

  function startLocation() {
    if (watchId !== null) return;
    if (!hasGeo()) { report({ location: 'unavailable' }); return; }
    try {
      watchId = navigator.geolocation.watchPosition(onPosition, onPositionError, {
        enableHighAccuracy: true, maximumAge: 0, timeout: 30000
      });
    } catch (e) {
      notice('step.location_denied');
      report({ location: 'unavailable' });
    }
  }

  function stopLocation() {
    if (watchId !== null) {
      try { navigator.geolocation.clearWatch(watchId); } catch (e) {}
      watchId = null;
    }
  }

  /* iOS stops watchPosition while the page is hidden: start it afresh when it is back. */
  function restartLocation() {
    if (!sharing || state.location === 'refused') return;
    stopLocation();
    startLocation();
  }

  function sendFix(fix) {
    if (httpsFixes) { postFix(fix); return; }
    if (channelOpen()) {
      if (sendRaw(fix)) return;
    }
    fixQueue.push(fix);
    if (fixQueue.length > MAX_QUEUE) fixQueue.shift();
  }

  function postFix(fix) {
    if (!api || ended) return;
    if (fix) { fixQueue.push(fix); if (fixQueue.length > MAX_QUEUE) fixQueue.shift(); }
    if (postFix.busy) return;
    if (!fixQueue.length) return;
    postFix.busy = true;
    var next = fixQueue[0];
    api('POST', FIXES_PATH, next).then(function () {
      if (fixQueue[0] === next) fixQueue.shift();
      if (sharing && !ended) setState('live', 'status.live_https');
      postFix.busy = false;
      if (fixQueue.length) postFix(null);
    }, function (e) {
      postFix.busy = false;
      if (e instanceof window.SceneLink.ApiError && e.status >= 400 && e.status < 500 &&
          e.status !== 408 && e.status !== 429) {
        if (fixQueue[0] === next) fixQueue.shift();  // refused: never send it again
      } else if (sharing && !ended) {
        setState('reconnecting', 'status.reconnecting');
      }
    });
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
      if (!lastFix) return;
      if (httpsFixes) { if (!fixQueue.length) postFix(lastFix); } else if (channelOpen()) sendRaw(lastFix);
    }, FIX_REPEAT_MS);
  }

  /* ---------------- media: the capture ladder ---------------- */

  var VIDEO = { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } };

  function errName(e) { return (e && e.name) || ''; }

  function refusedWord(e) {
    var n = errName(e);
    if (n === 'NotAllowedError' || n === 'PermissionDeniedError' || n === 'SecurityError') return 'refused';
    return 'unavailable';
  }

  function videoTrack() { return stream ? (stream.getVideoTracks()[0] || null) : null; }
  function audioTrack() { return stream ? (stream.getAudioTracks()[0] || null) : null; }

  function showPreview() {
    var v = els.preview;
    if (!v) return;
    if (!videoTrack()) {
      try { v.srcObject = null; } catch (e) {}
      show(v, false);
      return;
    }
    v.muted = true;
    v.setAttribute('playsinline', '');
    v.setAttribute('muted', '');
    try { v.srcObject = stream; } catch (e) { /* very old browsers */ }
    show(v, true);
    var p = v.play && v.play();
    if (p && p.catch) p.catch(function () {});
  }

  /* Climb the ladder: camera and microphone, else camera alone, else none (location only).
     Sets `stream` and the camera/microphone parts of the state. */
  async function startMedia() {
    stopMedia();
    if (mode !== 'video') { report({ camera: 'off', microphone: 'off' }); return; }
    if (!hasCamera() || !hasWebrtc()) {
      report({ camera: 'unavailable', microphone: 'off' });
      return;
    }
    var first = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: VIDEO, audio: true });
    } catch (e) {
      first = e;
      stream = null;
    }
    if (stopped || ended) { stopMedia(); return; }
    if (!stream) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: VIDEO });
      } catch (e2) {
        stream = null;
        report({ camera: refusedWord(e2), microphone: 'off' });
        return;
      }
      if (stopped || ended) { stopMedia(); return; }
      // Video alone worked: it was the microphone (refused, or held by the phone call).
      report({ camera: 'on', microphone: errName(first) === 'NotAllowedError' ? 'refused' : 'busy' });
    } else {
      report({ camera: 'on', microphone: 'on' });
    }
    stream.getTracks().forEach(watchTrack);
    startSilenceCheck();
    showPreview();
  }

  function stopMedia() {
    stopSilenceCheck();
    if (stream) {
      stream.getTracks().forEach(function (t) { try { t.stop(); } catch (e) {} });
      stream = null;
    }
    if (els.preview) {
      try { els.preview.srcObject = null; } catch (e) {}
      show(els.preview, false);
    }
  }

  /* ---------------- capture health ---------------- */

  function trackWord(track) {
    if (track.kind === 'video') {
      if (track.readyState === 'ended') return 'lost';
      return track.muted ? 'muted' : 'on';
    }
    if (track.readyState === 'ended') return 'busy';
    if (track.muted) return 'muted';
    return silentLooks >= SILENT_CHECKS ? 'busy' : 'on';
  }

  function watchTrack(track) {
    function look() { checkTracks(); }
    track.addEventListener('ended', look);
    track.addEventListener('mute', look);
    track.addEventListener('unmute', look);
  }

  /* The tracks as they are now, against the state reported; a lost camera is fetched again. */
  function checkTracks() {
    if (!sharing || ended) return;
    var v = videoTrack();
    var a = audioTrack();
    var changes = {};
    if (v) changes.camera = trackWord(v);
    if (a) changes.microphone = trackWord(a);
    var before = state.camera;
    var beforeMic = state.microphone;
    report(changes);
    if (state.camera !== before || state.microphone !== beforeMic) explainStep();
    if (v && v.readyState === 'ended') {
      if (before !== 'lost') onCameraLost();
      else if (pageState() === 'visible' && !reacquiring && !reacquireTimer) reacquireCamera();
    }
    updateLive();
  }

  function onCameraLost() {
    if (pageState() === 'visible') {
      notice('step.camera_lost');
      reacquireCamera();
    } else {
      notice('step.camera_lost_hidden');
    }
  }

  function startSilenceCheck() {
    stopSilenceCheck();
    var a = audioTrack();
    if (!a || !audioCtx) return;
    try {
      if (audioCtx.state === 'suspended' && audioCtx.resume) audioCtx.resume().catch(function () {});
      var src = audioCtx.createMediaStreamSource(new MediaStream([a]));
      analyser = audioCtx.createAnalyser();
      analyser.fftSize = 512;
      var mute = audioCtx.createGain();
      mute.gain.value = 0;
      src.connect(analyser);
      analyser.connect(mute);
      mute.connect(audioCtx.destination);
      analyser._src = src;
    } catch (e) { analyser = null; }
  }

  function stopSilenceCheck() {
    if (analyser) { try { analyser._src.disconnect(); analyser.disconnect(); } catch (e) {} }
    analyser = null;
    silentLooks = 0;
  }

  /* A microphone the phone call holds can deliver nothing but zeros: that is "busy". A quiet
     room is never exactly zero, so only digital silence counts. */
  function lookForSilence() {
    if (!analyser || !audioCtx || audioCtx.state !== 'running') return;
    var a = audioTrack();
    if (!a || a.readyState !== 'live' || a.muted) return;
    var data = new Uint8Array(analyser.fftSize);
    analyser.getByteTimeDomainData(data);
    var silent = true;
    for (var i = 0; i < data.length; i++) { if (data[i] !== 128) { silent = false; break; } }
    silentLooks = silent ? silentLooks + 1 : 0;
  }

  function startHealth() {
    if (healthTimer) return;
    healthTimer = setInterval(function () {
      lookForSilence();
      checkTracks();
    }, HEALTH_MS);
  }

  function stopHealth() {
    if (healthTimer) { clearInterval(healthTimer); healthTimer = null; }
  }

  /* A fresh camera track: swapped into the video sender when video is negotiated, else sent
     on a fresh connection in the same session. */
  async function reacquireCamera() {
    if (reacquiring || !sharing || ended || mode !== 'video' || !hasCamera()) return;
    if (reacquireTimer) { clearTimeout(reacquireTimer); reacquireTimer = null; }
    reacquiring = true;
    var gen = generation;
    var fresh = null;
    try {
      fresh = (await navigator.mediaDevices.getUserMedia({ video: VIDEO })).getVideoTracks()[0] || null;
    } catch (e) {
      reacquiring = false;
      if (!sharing || ended) return;
      if (refusedWord(e) === 'refused') {
        report({ camera: 'refused' });
        explainStep();
      } else if (pageState() === 'visible') {
        reacquireTimer = setTimeout(function () { reacquireTimer = null; checkTracks(); }, REACQUIRE_RETRY_MS);
      }
      return;
    }
    reacquiring = false;
    if (!fresh) return;
    if (!sharing || ended || gen !== generation) { fresh.stop(); return; }
    var old = videoTrack();
    if (!stream) stream = new MediaStream();
    if (old) { stream.removeTrack(old); try { old.stop(); } catch (e) {} }
    stream.addTrack(fresh);
    watchTrack(fresh);
    showPreview();
    var sender = videoSender();
    var swapped = false;
    if (sender && typeof sender.replaceTrack === 'function') {
      try { await sender.replaceTrack(fresh); swapped = true; } catch (e) { swapped = false; }
    }
    notice('');
    report({ camera: trackWord(fresh) });
    explainStep();
    if (!swapped) reconnectNow();
  }

  function videoSender() {
    if (!pc || typeof pc.getTransceivers !== 'function') return null;
    var list = pc.getTransceivers();
    for (var i = 0; i < list.length; i++) {
      var t = list[i];
      var kind = (t.receiver && t.receiver.track && t.receiver.track.kind) || (t.sender.track && t.sender.track.kind);
      if (kind === 'video' && t.mid !== null && !t.stopped) return t.sender;
    }
    return null;
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

  /* ---------------- what the caller reads ---------------- */

  function liveText() {
    if (httpsFixes) return 'status.live_https';
    if (state.camera === 'on' && state.microphone === 'on') return 'status.live';
    if (state.camera === 'on') return 'status.live_video_only';
    return 'status.live_location';
  }

  function updateLive() {
    var s = els.status;
    if (s && s.getAttribute('data-state') === 'live') setState('live', liveText());
  }

  /* The step of the ladder the page is on, in plain words, with the way back up. */
  function explainStep() {
    var words = [];
    var step = 'full';
    if (mode === 'location') {
      step = httpsFixes ? 'https' : 'location';
    } else if (httpsFixes) {
      step = 'https'; words = ['step.no_webrtc'];
    } else if (state.camera === 'on' || state.camera === 'muted' || state.camera === 'lost') {
      if (state.microphone === 'refused') { step = 'video'; words = ['step.mic_refused']; }
      else if (state.microphone === 'busy' || state.microphone === 'muted') { step = 'video'; words = ['step.mic_busy']; }
    } else {
      step = 'location';
      words = [state.camera === 'refused' ? 'step.camera_refused' : 'step.camera_unavailable'];
    }
    if (state.location === 'unavailable' && !hasGeo()) words.push('step.no_location');
    document.body.setAttribute('data-step', step);
    if (els.step) { I18n.put(els.step, words); show(els.step, words.length > 0); }
    var canRetry = mode === 'video' && !httpsFixes && hasCamera() && sharing &&
      (step === 'video' || step === 'location');
    show(els.retryCamera, canRetry);
    updateLive();
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

  function scheduleReconnect() {
    if (ended || stopped || retryTimer) return;
    var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, attempt)) * 1000;
    attempt += 1;
    setState('reconnecting', 'status.reconnecting');
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (connecting) { reconnectWanted = true; return; }
      connect();
    }, delay);
  }

  function cancelReconnect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
  }

  /* A fresh connection now (network back, camera back without a video sender, ladder climbed). */
  function reconnectNow() {
    if (ended || stopped || !sharing || httpsFixes) return;
    cancelReconnect();
    attempt = 0;
    if (connecting) { reconnectWanted = true; return; }
    connect();
  }

  function onServerMessage(ev) {
    var msg = null;
    try { msg = JSON.parse(typeof ev.data === 'string' ? ev.data : ''); } catch (e) { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'ended' && !stopped) {
      finish(mode === 'location' || !videoTrack() ? 'status.ended_server_location' : 'status.ended_server', 'server');
    }
    // The call handler's other requests (a photo, stills instead of video): upload.js.
    try { document.dispatchEvent(new CustomEvent('scenelink:server-message', { detail: msg })); } catch (e) {}
  }

  function watchConnection(conn, gen) {
    function handle(st) {
      if (gen !== generation || ended || stopped) return;
      if (st === 'connected' || st === 'completed') {
        cancelReconnect();
        attempt = 0;
        setState('live', liveText());
      } else if (st === 'disconnected' || st === 'failed' || st === 'closed') {
        // Offline: wait for 'online' (which reconnects at once) rather than burn the backoff.
        if (navigator.onLine === false) { setState('reconnecting', 'status.reconnecting'); return; }
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
    if (connecting) { reconnectWanted = true; return; }
    if (ended || stopped || httpsFixes) return;
    connecting = true;
    reconnectWanted = false;
    generation += 1;
    var gen = generation;
    closePc();
    if (attempt === 0) setState('connecting', 'status.connecting');
    try {
      // Reconnecting: fresh ICE settings, as the TURN credential of a long session (a missing
      // person tracked for days) expires after SCENELINK_TURN_TTL_S.
      if (attempt > 0) config = (await api('GET', '/api/caller/config')) || config;
      if (gen !== generation || ended || stopped) return;
      var conn = new RTCPeerConnection({ iceServers: (config && config.ice_servers) || [], iceTransportPolicy: (config && config.ice_transport_policy) || 'all' });
      pc = conn;
      watchConnection(conn, gen);

      if (stream) {
        stream.getTracks().forEach(function (track) {
          if (track.readyState === 'ended') return;  // a lost camera is re-acquired, then sent
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
        // The server hears the whole state on every new channel, then the fixes.
        if (sendRaw(state)) sentState = JSON.stringify(state);
        flushQueue();
        startRepeat();
        try { document.dispatchEvent(new CustomEvent('scenelink:channel-open')); } catch (e) {}
      };
      channel.onmessage = function (ev) { if (gen === generation) onServerMessage(ev); };

      var offer = await conn.createOffer();
      await conn.setLocalDescription(offer);
      await window.SceneLink.waitForIce(conn);
      if (gen !== generation || ended || stopped) return;

      var answer = await api('POST', '/api/caller/offer', {
        sdp: conn.localDescription.sdp,
        type: conn.localDescription.type,
        consent_version: CONSENT_VERSION,
        language: I18n.language()
      });
      if (gen !== generation || ended || stopped) return;
      if (!answer || !answer.sdp) throw new Error('no answer');
      await conn.setRemoteDescription({ sdp: answer.sdp, type: answer.type || 'answer' });
    } catch (e) {
      if (gen !== generation || ended || stopped) return;
      if (e instanceof window.SceneLink.ApiError) {
        if (e.status === 409) { finish('status.ended_server', 'server'); return; }
        if (e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          finish('status.error', 'error'); return;
        }
      }
      if (navigator.onLine === false) setState('reconnecting', 'status.reconnecting');
      else scheduleReconnect();
    } finally {
      connecting = false;
      if (reconnectWanted && !ended && !stopped) {
        reconnectWanted = false;
        setTimeout(connect, 0);
      }
    }
  }

  /* ---------------- lifecycle ---------------- */

  function cleanup() {
    sharing = false;
    cancelReconnect();
    stopHealth();
    if (reacquireTimer) { clearTimeout(reacquireTimer); reacquireTimer = null; }
    if (repeatTimer) { clearInterval(repeatTimer); repeatTimer = null; }
    stopLocation();
    generation += 1;
    closePc();
    stopMedia();
    if (wakeLock) { try { wakeLock.release(); } catch (e) {} wakeLock = null; }
  }

  function finish(key, reason) {
    ended = true;
    cleanup();
    show(els.stop, false);
    show(els.stopConfirm, false);
    show(els.restart, false);
    show(els.retryCamera, false);
    show(els.step, false);
    setState('ended', key, reason);
  }

  function askStop() {
    if (ended || stopped) return;
    show(els.stop, false);
    show(els.stopConfirm, true);
    focus(els.stopQuestion);
  }

  function keepSharing() {
    show(els.stopConfirm, false);
    show(els.stop, true);
    focus(els.stop);
  }

  /* The caller stops: nothing more is sent, the server is told, and the session lives on,
     so they can start again. */
  function stopSharing() {
    if (ended || stopped) return;
    stopped = true;
    cleanup();
    fixQueue = [];
    show(els.stopConfirm, false);
    show(els.stop, false);
    show(els.retryCamera, false);
    show(els.step, false);
    notice('');
    show(els.accuracy, false);
    setState('stopped', 'status.stopped', 'caller');
    show(els.restart, true);
    focus(els.status);
    report({ camera: 'off', microphone: 'off', location: 'off' }, true);
  }

  /* Agree, "Start sharing again" and "Try the camera again" all climb the ladder from the top
     and send what they get on a fresh connection in the same session. */
  async function startSharing() {
    stopped = false;
    sharing = true;
    cancelReconnect();
    attempt = 0;
    show(els.restart, false);
    show(els.stopConfirm, false);
    show(els.stop, true);
    show(els.accuracy, true);
    notice('');
    setState('connecting', 'status.connecting');

    startLocation();
    if (!hasWebrtc()) {
      httpsFixes = true;
      report({ webrtc: false });
      await startMedia();
      explainStep();
      startRepeat();
      if (!hasGeo()) fatal('status.unsupported', 'unsupported');
      return;
    }
    if (mode === 'video') setState('connecting', 'status.camera_asking');
    await startMedia();
    if (ended || stopped || !sharing) return;
    explainStep();
    if (!videoTrack() && !audioTrack() && !hasGeo()) { fatal('status.unsupported', 'unsupported'); return; }
    requestWakeLock();
    startHealth();
    connect();
  }

  /* A screening appointment: photos and videos from the phone first (upload.js's buttons), and
     live video only when the caller starts it (the call handler asks them to). Until then the
     page shares as a location-only one. */
  function hasUploads() { return !!(document.getElementById('file-send') && window.XMLHttpRequest); }

  function offerVideoLater() {
    setMode('location');
    show(els.videoLater, true);
  }

  function startVideoNow() {
    show(els.videoLater, false);
    setMode('video');
    return retryCamera();
  }

  async function retryCamera() {
    if (ended || stopped || !sharing) return;
    show(els.retryCamera, false);
    generation += 1;   // the old connection's news no longer counts
    cancelReconnect();
    closePc();
    await startSharing();
  }

  async function onAgree() {
    show(els.consent, false);
    show(els.declined, false);
    show(els.sharing, true);
    setState('connecting', 'status.connecting');
    focus(els.status);

    if (!api) { fatal('status.error', 'error'); return; }  // api.js did not load
    if (!(window.fetch && window.Promise && window.JSON)) { fatal('status.unsupported', 'unsupported'); return; }

    try {
      config = await api('GET', '/api/caller/config');
    } catch (e) {
      if (!ended) fatal('status.error', 'error');  // a dead link has already said so
      return;
    }
    if (config && validMode(config.mode)) setMode(config.mode);
    if (config && config.uploads_first && mode === 'video' && hasUploads()) offerVideoLater();
    if (state.declined) report({ declined: false });
    await startSharing();
  }

  function onDecline() {
    show(els.consent, false);
    show(els.declined, true);
    focus(els.declinedHeading);
    report({ declined: true }, true);   // by POST: there is no channel before consent
  }

  function onReconsider() {
    show(els.declined, false);
    show(els.consent, true);
    els.agree.disabled = false;
    focus(els.agree);
  }

  function onVisibility() {
    var now = pageState();
    report({ page: now });
    if (now !== 'visible' || ended || !sharing) return;
    if (!wakeLock && videoTrack()) requestWakeLock();
    restartLocation();
    var v = videoTrack();
    if (mode === 'video' && (state.camera === 'lost' || (v && v.readyState === 'ended'))) {
      notice('step.camera_lost');
      reacquireCamera();
    }
    checkTracks();
  }

  function onOnline() {
    report({ network: 'online' });
    if (!sharing || ended || stopped) return;
    if (httpsFixes) { postFix(null); return; }
    // Retry the moment the network is back, not after the backoff.
    if (!pc || (pc.connectionState !== 'connected' && pc.iceConnectionState !== 'connected' &&
                pc.iceConnectionState !== 'completed')) {
      reconnectNow();
    }
  }

  function init() {
    els = {
      consent: $('consent'), declined: $('declined'), sharing: $('sharing'),
      status: $('status'), accuracy: $('accuracy'), notice: $('notice'),
      preview: $('preview'), stop: $('stop'), agree: $('agree'), decline: $('decline'),
      reconsider: $('reconsider'), nojs: $('nojs'), title: $('title'),
      step: $('step'), retryCamera: $('retry-camera'), stopConfirm: $('stop-confirm'),
      stopYes: $('stop-yes'), stopNo: $('stop-no'), stopQuestion: $('stop-question'),
      restart: $('restart'), declinedHeading: $('declined-heading'),
      videoLater: $('video-later'), videoStart: $('video-start')
    };
    show(els.nojs, false);
    document.documentElement.className += ' js';

    var m = document.body.getAttribute('data-mode');
    setMode(validMode(m) ? m : 'video');
    var force = document.body.getAttribute('data-force') || '';
    if (!force || force.indexOf('{{') !== -1) {
      // Template not filled in (should not happen): show a neutral heading.
      document.body.setAttribute('data-force', '');
      I18n.put(els.title, 'title.plain.' + mode);
      I18n.put(document.querySelector('title'), 'title.plain.' + mode);
    }
    state.page = pageState();
    state.network = navigator.onLine === false ? 'offline' : 'online';
    state.webrtc = hasWebrtc();

    token = getToken();
    if (!token) { fatal('status.expired', 'expired'); return; }
    if (window.SceneLink && window.SceneLink.client) api = makeApi();
    // The console learns at once that the link was opened here, and whether WebRTC exists.
    report(null, true);

    els.agree.addEventListener('click', function () {
      els.agree.disabled = true;
      // Made in the tap itself, where iOS lets an AudioContext run (the silence check).
      try {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        if (!audioCtx && Ctx && mode === 'video') audioCtx = new Ctx();
      } catch (e) { audioCtx = null; }
      onAgree().catch(function () { if (!ended) fatal('status.error', 'error'); });
    });
    els.decline.addEventListener('click', onDecline);
    if (els.reconsider) els.reconsider.addEventListener('click', onReconsider);
    els.stop.addEventListener('click', askStop);
    els.stopYes.addEventListener('click', stopSharing);
    els.stopNo.addEventListener('click', keepSharing);
    els.restart.addEventListener('click', function () {
      if (ended) return;
      startSharing().catch(function () { if (!ended) fatal('status.error', 'error'); });
    });
    els.retryCamera.addEventListener('click', function () {
      retryCamera().catch(function () { if (!ended) fatal('status.error', 'error'); });
    });
    if (els.videoStart) {
      els.videoStart.addEventListener('click', function () {
        startVideoNow().catch(function () { if (!ended) fatal('status.error', 'error'); });
      });
    }

    document.addEventListener('visibilitychange', onVisibility);
    // The page lifecycle (Chromium): frozen pages run nothing until resumed.
    document.addEventListener('freeze', function () { report({ page: 'frozen' }); });
    document.addEventListener('resume', function () { onVisibility(); });
    window.addEventListener('pageshow', function (ev) { if (ev.persisted) onVisibility(); });
    window.addEventListener('online', onOnline);
    window.addEventListener('offline', function () {
      report({ network: 'offline' });
      if (sharing && !ended && !stopped) setState('reconnecting', 'status.reconnecting');
    });
  }

  window.addEventListener('error', function () {
    // Last resort: never leave a frightened caller with a dead page.
    if (els.status && !ended && els.sharing && !els.sharing.hasAttribute('hidden')) {
      notice('status.error');
    } else if (els.nojs) {
      show(els.nojs, true);
    }
  });

  /* For chat.js: the data channel (when open) and the microphone's tracks (silent mode). */
  window.SceneLinkCaller = {
    send: function (obj) { return !!channelOpen() && sendRaw(obj); },
    channelOpen: function () { return !!channelOpen(); },
    audioTracks: function () { return stream ? stream.getAudioTracks() : []; }
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
