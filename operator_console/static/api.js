/* SceneLink browser API client, shared by every page: the console (/console/), the officer link
   page (/o/<token>) and the caller page (/c/<token>, which loads it from /console/static/ too).
   Requests, the one way of turning an error answer into words, what a page does when its sign-in
   or link is no longer accepted, the WebSocket helper and the ICE-gathering wait.
   Plain ES2017, no build step, no modules, CSP-safe (no inline code); it must run on iPhone
   Safari, so it uses standard APIs only and defines one global, window.SceneLink. */
(function () {
  'use strict';

  var SceneLink = window.SceneLink = window.SceneLink || {};
  var ICE_WAIT_MS = 3000;

  /* A refused answer: status, the parsed body ({"error", "detail"?, "fields"?}) and, as message,
     the server's short reason ("session has ended"). Words for people: errorText(e). */
  function ApiError(status, data) {
    this.name = 'ApiError';
    this.status = status;
    this.data = (data && typeof data === 'object') ? data : {};
    this.message = this.data.error ? String(this.data.error) : ('HTTP ' + status);
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  /* One client per page. Options:
       token        the link's token, sent as a bearer header (caller and officer links);
       credentials  'same-origin' (default: the console's cookie) or 'omit';
       csrf         send X-Requested-With: scenelink on requests that change something (default true);
       authLostOn   the statuses that mean "no longer signed in / link no longer works" ([401]);
       onAuthLost   function (err, path): the page's answer to those (sign-in form, "link no longer works").
     Returns api(method, path, body, headers) -> the parsed JSON answer, or throws ApiError
     (refused) or a TypeError (no answer at all: offline, server unreachable); headers, optional,
     are added to the request's. */
  function client(opts) {
    opts = opts || {};
    var lost = opts.authLostOn || [401];
    return async function api(method, path, body, extra) {
      var headers = { 'Accept': 'application/json' };
      if (extra) Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });
      if (opts.token) headers['Authorization'] = 'Bearer ' + opts.token;
      if (opts.csrf !== false && method !== 'GET' && method !== 'HEAD') headers['X-Requested-With'] = 'scenelink';
      var req = { method: method, headers: headers, credentials: opts.credentials || 'same-origin', cache: 'no-store' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        req.body = JSON.stringify(body);
      }
      var res = await fetch(path, req);
      var data = null;
      var text = await res.text();
      if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
      if (!res.ok) {
        var err = new ApiError(res.status, data);
        if (opts.onAuthLost && lost.indexOf(res.status) !== -1) opts.onAuthLost(err, path);
        throw err;
      }
      return data;
    };
  }

  /* The field errors of a refused answer ({} if none): {"phone": "not a UK mobile number"}. */
  function fieldErrors(e) {
    var f = e instanceof ApiError ? e.data.fields : null;
    return (f && typeof f === 'object') ? f : {};
  }

  /* The one way an error becomes words on a page. Field errors say what to correct, so they
     replace the generic "validation failed"; else the reason, then its detail if any. */
  function errorText(e, offline) {
    if (!(e instanceof ApiError)) return offline || 'Cannot reach the server.';
    var fields = fieldErrors(e);
    var names = Object.keys(fields);
    if (names.length) {
      return names.map(function (k) { return k.replace(/^body\./, '') + ': ' + String(fields[k]); }).join('; ');
    }
    var text = e.message;
    if (typeof e.data.detail === 'string' && e.data.detail) text += ': ' + e.data.detail;
    return text;
  }

  /* How old a fix is, and whether it is stale: the one rule for the console and the officer page
     (older than the server's fix_stale_s). nowMs: the server's time as the page knows it
     (default Date.now()). Null when the fix carries no usable time. */
  function fixAge(fix, staleS, nowMs) {
    var at = fix ? Date.parse(fix.received_at || fix.device_time) : NaN;
    if (!isFinite(at)) return null;
    var s = Math.max(0, Math.round(((nowMs === undefined ? Date.now() : nowMs) - at) / 1000));
    return { seconds: s, stale: s > staleS };
  }

  function backoff(attempt, maxMs) { return Math.min(maxMs || 10000, 1000 * Math.pow(2, attempt)); }

  function wsUrl(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  }

  /* A WebSocket to this server that speaks JSON: on.open(socket), on.message(object),
     on.close(event). Returns the socket, or null if it could not be opened (the caller retries).
     Close one for good with closeSocket (no close handler runs). */
  function openSocket(path, on) {
    if (!window.WebSocket) return null;
    var socket;
    try { socket = new WebSocket(wsUrl(path)); } catch (e) { return null; }
    socket.onopen = function () { if (on.open) on.open(socket); };
    socket.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(typeof ev.data === 'string' ? ev.data : ''); } catch (e) { return; }
      if (msg && typeof msg === 'object' && on.message) on.message(msg);
    };
    socket.onclose = function (ev) { if (on.close) on.close(ev); };
    socket.onerror = function () { /* onclose follows */ };
    return socket;
  }

  function closeSocket(socket) {
    if (!socket) return;
    try { socket.onclose = null; socket.onmessage = null; socket.close(); } catch (e) {}
  }

  /* Resolves once ICE gathering is complete (the offer then carries every candidate, as the
     server does no trickle ICE), or after ms (default 3 s) with what was gathered by then. */
  function waitForIce(pc, ms) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') { resolve(); return; }
      var done = false;
      var timer = setTimeout(finish, ms || ICE_WAIT_MS);
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

  /* A chat message as last told (by id) into `messages`, its id in `order` kept in the server's
     order (seq): the console's, the caller's and the officer's chat. Anything without an id is
     ignored. What a page knows of a message never goes back: an HTTP answer can arrive after
     newer news of the same message (a POST's answer after the other side's read receipt came
     over the live feed), so its delivered, read and translation stay. */
  function keepMessage(messages, order, m) {
    if (!m || typeof m.message_id !== 'string') return;
    var known = messages[m.message_id];
    if (!known) order.push(m.message_id);
    else {
      m = Object.assign({}, m, {
        delivered_at: m.delivered_at || known.delivered_at || null,
        read_at: m.read_at || known.read_at || null,
        translation: m.translation || known.translation || null
      });
    }
    messages[m.message_id] = m;
    order.sort(function (a, b) { return messages[a].seq - messages[b].seq; });
  }

  // The messages from ``sender`` still owed a ``want`` ('read' or 'delivered') receipt: not
  // already sent by us (``receipted``: id -> receipt) nor known to the server to have one.
  function receiptsDue(messages, order, receipted, sender, want) {
    return order.filter(function (id) {
      var m = messages[id];
      if (m.sender !== sender) return false;
      var done = receipted[id];
      return want === 'read' ? done !== 'read' && !m.read_at : !done && !m.delivered_at;
    });
  }

  SceneLink.ApiError = ApiError;
  SceneLink.client = client;
  SceneLink.errorText = errorText;
  SceneLink.fieldErrors = fieldErrors;
  SceneLink.backoff = backoff;
  SceneLink.fixAge = fixAge;
  SceneLink.wsUrl = wsUrl;
  SceneLink.openSocket = openSocket;
  SceneLink.closeSocket = closeSocket;
  SceneLink.waitForIce = waitForIce;
  SceneLink.keepMessage = keepMessage;
  SceneLink.receiptsDue = receiptsDue;
})();
