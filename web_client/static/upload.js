/* SceneLink caller page: photos and videos from the phone, a photo the call handler asks for,
   and stills every few seconds when live video cannot flow. Plain ES2017, no build step, no
   inline code (CSP script-src 'self'); loaded after caller.js.

   A file goes over HTTPS in pieces: POST /api/caller/uploads announces it, each PUT carries
   one piece with its Content-Range, and after a dropped connection GET says how much arrived,
   so a weak signal resumes instead of starting again. XMLHttpRequest, for upload progress.
   The server checks the type by the file's bytes and keeps it as evidence.

   Stills replace video when this browser has no RTCPeerConnection, when the video
   connection has been failing for a while, or when the server says the video is too thin
   (a {"type": "stills"} message, which caller.js passes on as a 'scenelink:server-message'
   event, as it does the call handler's {"type": "photo_request"}). */
(function () {
  'use strict';

  var UPLOADS = '/api/caller/uploads';
  var STILLS = '/api/caller/stills';
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
  var MAX_TRIES = 40;          // about ten minutes of a dead signal before giving up on a file
  var WATCH_MS = 1000;
  var FAILING_S = 15;          // the video connection reconnecting this long: stills instead
  var STILL_WIDTH = 1280;
  var STILL_QUALITY = 0.7;

  var I18n = window.SceneLinkI18n;
  var els = {};
  var token = '';
  var queue = [];
  var busy = false;
  var stills = { on: false, reason: '', intervalMs: 5000, timer: null, sending: false, stream: null };
  var cameraRefused = false;  // asked once for stills and refused: never asked again
  var failingSince = 0;

  function $(id) { return document.getElementById(id); }

  function getToken() {
    var parts = (location.pathname || '').split('/').filter(function (p) { return p.length > 0; });
    var last = parts.length ? parts[parts.length - 1] : '';
    try { return decodeURIComponent(last); } catch (e) { return last; }
  }

  function say(key, params) {
    I18n.put(els.progress, key || '', params);
    if (key) els.progress.removeAttribute('hidden'); else els.progress.setAttribute('hidden', '');
  }

  /* One request; resolves {status, body} for any answer, rejects only when none came. */
  function request(method, path, body, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, path, true);
      xhr.setRequestHeader('Authorization', 'Bearer ' + token);
      xhr.setRequestHeader('Accept', 'application/json');
      Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) onProgress(ev.loaded); };
      }
      xhr.onload = function () {
        var parsed = null;
        try { parsed = JSON.parse(xhr.responseText); } catch (e) {}
        resolve({ status: xhr.status, body: parsed || {} });
      };
      xhr.onerror = xhr.ontimeout = xhr.onabort = function () { reject(new Error('no answer')); };
      if (body instanceof Blob) {
        xhr.send(body);
      } else if (body) {
        xhr.setRequestHeader('Content-Type', 'application/json');
        xhr.send(JSON.stringify(body));
      } else {
        xhr.send();
      }
    });
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function refusal(status) {
    if (status === 415) return 'files.wrong_type';
    if (status === 413) return 'files.too_large';
    if (status === 410) return 'files.ended';
    return 'files.error';
  }

  function Refused(status) { this.status = status; }

  /* Send one blob in pieces, resuming after a lost connection; resolves the kept file. */
  async function upload(blob, name, origin, quiet) {
    var size = blob.size;
    var start = await request('POST', UPLOADS, { filename: name || '', size: size, origin: origin });
    if (start.status !== 201) throw new Refused(start.status);
    var id = encodeURIComponent(start.body.upload_id);
    var chunk = start.body.chunk_max || 262144;
    var received = 0;
    var tries = 0;
    function progress(extra) {
      if (!quiet) say('files.sending', { name: name, percent: Math.floor(100 * Math.min(size, received + extra) / size) });
    }
    while (true) {
      var end = Math.min(size, received + chunk);
      var answer = null;
      try {
        progress(0);
        answer = await request('PUT', UPLOADS + '/' + id, blob.slice(received, end),
          { 'Content-Range': 'bytes ' + received + '-' + (end - 1) + '/' + size }, progress);
      } catch (e) {
        tries += 1;
        if (tries > MAX_TRIES) throw new Refused(0);
        if (!quiet) say('files.retrying', { name: name, percent: Math.floor(100 * received / size) });
        await wait(BACKOFF_MS[Math.min(tries - 1, BACKOFF_MS.length - 1)]);
        try {  // how much arrived before the signal went
          var asked = await request('GET', UPLOADS + '/' + id);
          if (asked.status === 201) return asked.body.file;  // it was all in: the answer was lost
          if (asked.status === 200) received = asked.body.received;
          else throw new Refused(asked.status);
        } catch (e2) {
          if (e2 instanceof Refused) throw e2;
        }
        continue;
      }
      tries = 0;
      if (answer.status === 201) return answer.body.file;
      if (answer.status === 200 || answer.status === 409) {
        received = answer.body.received;
        continue;
      }
      throw new Refused(answer.status);
    }
  }

  async function drain() {
    if (busy) return;
    busy = true;
    while (queue.length) {
      var item = queue.shift();
      try {
        await upload(item.blob, item.name, item.origin, false);
        say('files.sent', { name: item.name });
      } catch (e) {
        say('files.failed', { name: item.name, reason: I18n.t(refusal(e && e.status)) });
      }
    }
    busy = false;
  }

  function send(blob, name, origin) {
    queue.push({ blob: blob, name: name, origin: origin });
    drain();
  }

  function onPicked(input, origin) {
    var files = input.files ? Array.prototype.slice.call(input.files) : [];
    files.forEach(function (f) { send(f, f.name || I18n.t('files.photo'), origin); });
    try { input.value = ''; } catch (e) {}
  }

  /* ---------------- pictures from the camera ---------------- */

  function liveTrack() {
    var s = els.preview && els.preview.srcObject;
    var track = s && s.getVideoTracks ? s.getVideoTracks()[0] : null;
    return track && track.readyState === 'live' ? track : null;
  }

  function canvasGrab(maxWidth, quality) {
    return new Promise(function (resolve, reject) {
      var v = els.preview;
      if (!v || !v.videoWidth) { reject(new Error('no picture yet')); return; }
      var scale = maxWidth && v.videoWidth > maxWidth ? maxWidth / v.videoWidth : 1;
      var canvas = document.createElement('canvas');
      canvas.width = Math.round(v.videoWidth * scale);
      canvas.height = Math.round(v.videoHeight * scale);
      canvas.getContext('2d').drawImage(v, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (b) { if (b) resolve(b); else reject(new Error('no picture')); }, 'image/jpeg', quality);
    });
  }

  /* The camera's full resolution where ImageCapture exists, else the preview's picture. */
  async function fullPhoto() {
    var track = liveTrack();
    if (track && typeof window.ImageCapture === 'function') {
      try { return await new window.ImageCapture(track).takePhoto(); } catch (e) {}
    }
    return canvasGrab(0, 0.92);
  }

  async function onPhotoRequest() {
    if (!liveTrack()) { say('files.requested_pick'); return; }
    say('files.requested');
    try {
      send(await fullPhoto(), I18n.t('files.photo'), 'requested');
    } catch (e) {
      say('files.requested_pick');
    }
  }

  /* ---------------- stills when video cannot flow ---------------- */

  /* The camera caller.js already shows; only a page that never asked for it (no WebRTC) asks
     here, and only once. */
  async function ownCamera(mayAsk) {
    if (liveTrack()) return true;
    if (!mayAsk || cameraRefused || !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) return false;
    try {
      stills.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch (e) {
      cameraRefused = true;
      return false;
    }
    var v = els.preview;
    v.muted = true;
    v.setAttribute('playsinline', '');
    v.srcObject = stills.stream;
    v.removeAttribute('hidden');
    var p = v.play && v.play();
    if (p && p.catch) p.catch(function () {});
    return true;
  }

  async function sendStill() {
    if (!stills.on || stills.sending) return;
    stills.sending = true;
    try {
      await upload(await canvasGrab(STILL_WIDTH, STILL_QUALITY), 'still.jpg', 'low_bandwidth', true);
    } catch (e) {
      if (e instanceof Refused && e.status === 410) stopStills('', true);
    } finally {
      stills.sending = false;
    }
  }

  async function startStills(reason, mayAsk) {
    if (stills.on) return;
    stills.on = true;
    stills.reason = reason;
    if (!(await ownCamera(mayAsk))) { stills.on = false; return; }
    try {
      var answer = await request('POST', STILLS, { on: true, reason: reason });
      if (answer.status === 200 && answer.body.interval_s > 0) stills.intervalMs = answer.body.interval_s * 1000;
    } catch (e) { /* the stills themselves still say it */ }
    say('files.stills_on', { seconds: Math.round(stills.intervalMs / 1000) });
    sendStill();
    stills.timer = setInterval(sendStill, stills.intervalMs);
  }

  function stopStills(reason, quiet) {
    if (!stills.on) return;
    stills.on = false;
    if (stills.timer) { clearInterval(stills.timer); stills.timer = null; }
    if (stills.stream) {
      stills.stream.getTracks().forEach(function (t) { try { t.stop(); } catch (e) {} });
      stills.stream = null;
    }
    if (!quiet) request('POST', STILLS, { on: false, reason: reason }).catch(function () {});
    say('');
  }

  /* Watch what caller.js shows: sharing (not ended), and how the video connection fares. */
  function watch() {
    var st = els.status ? els.status.getAttribute('data-state') : '';
    var sharing = !els.sharing.hasAttribute('hidden') && st && st !== 'ended' && st !== 'stopped';
    if (!sharing) { failingSince = 0; stopStills('', true); return; }
    if (document.body.getAttribute('data-mode') !== 'video') return;
    if (typeof window.RTCPeerConnection !== 'function') { startStills('no WebRTC in this browser', true); return; }
    if (st === 'reconnecting') {
      if (!failingSince) failingSince = Date.now();
      if (Date.now() - failingSince > FAILING_S * 1000) startStills('the video connection is failing', false);
    } else {
      failingSince = 0;
      if (st === 'live' && stills.on && stills.reason === 'the video connection is failing') stopStills('video flowing again');
    }
  }

  function onServerMessage(ev) {
    var msg = ev.detail || {};
    if (msg.type === 'photo_request') onPhotoRequest();
    else if (msg.type === 'stills' && msg.on) startStills(String(msg.reason || 'low bandwidth'), false);
    else if (msg.type === 'stills') stopStills(String(msg.reason || 'video flowing again'));
  }

  function init() {
    els = {
      sharing: $('sharing'), status: $('status'), preview: $('preview'), progress: $('file-progress'),
      send: $('file-send'), take: $('file-take'), gallery: $('file-gallery'), camera: $('file-camera')
    };
    if (!els.sharing || !els.progress || !window.XMLHttpRequest || !window.Blob) return;
    token = getToken();
    els.send.addEventListener('click', function () { els.gallery.click(); });
    els.take.addEventListener('click', function () { els.camera.click(); });
    els.gallery.addEventListener('change', function () { onPicked(els.gallery, 'gallery'); });
    els.camera.addEventListener('change', function () { onPicked(els.camera, 'camera'); });
    document.addEventListener('scenelink:server-message', onServerMessage);
    setInterval(watch, WATCH_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
