/* SceneLink operator console: what every panel shares. The console is one page in several files,
   loaded in order by console.html (this one first, main.js last), each one concept; they meet in
   window.SceneLink.console ("C" in each file). Plain ES2017, no framework, no build step,
   CSP-safe (no inline code). Needs api.js. */
(function () {
  'use strict';

  var C = window.SceneLink.console = {};

  C.POLL_MS = 2000;
  C.RECORDINGS_POLL_MS = 15000;
  C.MAX_BACKOFF_MS = 10000;

  C.els = {};                 // elements by name, looked up once by main.js
  C.me = null;                // the signed-in user ({username, roles}), null when signed out
  C.config = { tile_url: null, tile_attribution: '', force_name: '', fix_stale_s: 30 };
  C.sessions = {};            // id -> session object (latest known)
  C.rows = {};                // id -> row element refs
  C.live = null;              // state of the watched session (live.js)
  C.liveMap = null;           // maps.js: { map, trail, marker, circle, fitted }
  C.playbackMap = null;

  /* Every console request, shares.js's and retention.js's included: a 401 anywhere but the
     sign-in calls means the sign-in has lapsed, so the page goes back to the sign-in form. */
  C.api = window.SceneLink.client({
    onAuthLost: function (err, path) {
      if (path !== '/api/me' && path !== '/api/login' && C.me) C.onSignedOut('Your session has expired. Please sign in again.');
    }
  });

  /* ---------------- helpers ---------------- */

  C.show = function (el, on) {
    if (!el) return;
    if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', '');
  };

  C.clear = function (el) { while (el && el.firstChild) el.removeChild(el.firstChild); };

  C.mk = function (tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  C.globalError = function (msg) {
    C.els.globalError.textContent = msg || '';
    C.show(C.els.globalError, !!msg);
  };

  C.parseTime = function (iso) {
    if (!iso) return NaN;
    return Date.parse(iso);
  };

  C.ago = function (ms) {
    if (!isFinite(ms)) return '';
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min ago';
    return Math.floor(h / 24) + ' days ago';
  };

  C.fmtDuration = function (sec) {
    if (typeof sec !== 'number' || !isFinite(sec)) return '';
    sec = Math.round(sec);
    var m = Math.floor(sec / 60);
    var s = sec % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  };

  C.fmtDate = function (iso) {
    var t = C.parseTime(iso);
    if (!isFinite(t)) return '';
    try { return new Date(t).toLocaleString('en-GB'); } catch (e) { return new Date(t).toISOString(); }
  };

  C.isNum = function (v) { return typeof v === 'number' && isFinite(v); };
  C.validFix = function (f) { return f && C.isNum(f.lat) && C.isNum(f.lon); };

  var STATE_LABELS = {
    link_sent: 'Link sent', opened: 'Link opened', connecting: 'Connecting',
    live: 'Live', reconnecting: 'Reconnecting', ended: 'Ended'
  };
  C.stateLabel = function (s) { return STATE_LABELS[s] || String(s || 'unknown'); };

  // "" while the evidence is being written; else what the call handler must know now.
  C.recordingProblem = function (s) {
    var rec = s && s.recording;
    if (!rec || rec.state !== 'failed') return '';
    return 'Recording failed' + (rec.cause ? ': ' + rec.cause : '') + ' (live view continues)';
  };

  // The caller's state in one line the handler can act on (the server words it), and
  // whether it is a problem to act on (anything but sharing).
  C.callerLine = function (s) { return (s && s.caller_summary) || ''; };
  C.callerOk = function (s) { return /^Sharing /.test(C.callerLine(s)); };
  C.linkRefused = function (s) { return /^Link expired when tapped/.test(C.callerLine(s)); };
  // "Mobile Safari 17.5 on iPhone (iOS 17.5)", or "" before the link is opened.
  C.callerDevice = function (s) {
    var d = s && s.caller_device;
    if (!d) return '';
    return [d.browser, d.device].filter(function (x) { return !!x; }).join(' on ');
  };

  // The caller's network as the server receives it, e.g.
  // "RTT 80 ms · loss 0.4 % · 1.4 Mbit/s · 25 fps · 1280x720"; "" before it is measured.
  C.networkLine = function (s) {
    var n = s && s.network;
    if (!n) return '';
    var parts = [];
    if (C.isNum(n.rtt_ms)) parts.push('RTT ' + Math.round(n.rtt_ms) + ' ms');
    if (C.isNum(n.loss_pct)) parts.push('loss ' + n.loss_pct.toFixed(1) + ' %');
    if (C.isNum(n.bitrate_kbps)) {
      parts.push(n.bitrate_kbps >= 1000 ? (n.bitrate_kbps / 1000).toFixed(1) + ' Mbit/s' : Math.round(n.bitrate_kbps) + ' kbit/s');
    }
    if (C.isNum(n.fps)) parts.push(Math.round(n.fps) + ' fps');
    if (C.isNum(n.width) && C.isNum(n.height)) parts.push(n.width + 'x' + n.height);
    return parts.join(' · ');
  };

  // {seconds, stale} of a fix, by the server's threshold (api.js: the officer page's rule too).
  C.fixAge = function (fix) {
    return window.SceneLink.fixAge(fix, C.isNum(C.config.fix_stale_s) ? C.config.fix_stale_s : 30);
  };

  C.viewersCount = function (v) {
    if (Array.isArray(v)) return v.length;
    if (C.isNum(v)) return v;
    return 0;
  };

  C.backoff = function (attempt) { return window.SceneLink.backoff(attempt, C.MAX_BACKOFF_MS); };

  /* ---------------- what the signed-in role may use ---------------- */

  /* The server's permission table decides; at sign-in it lists the routes this account may call
     (C.me.allowed, "METHOD /path" as in signalling/web/permissions.py), and the console shows
     and polls only those. C.may('GET /api/audit'). */
  C.may = function (route) {
    return !!(C.me && Array.isArray(C.me.allowed) && C.me.allowed.indexOf(route) !== -1);
  };

  /* Role gating for the page: an element with data-needs="GET /api/audit" (several routes,
     comma-separated: any one will do) is absent (display: none, whatever its module does with
     hidden) unless the signed-in account may call that route. Run at every sign-in; a module
     that builds gated elements later calls it again. */
  C.applyGates = function (root) {
    Array.prototype.forEach.call((root || document).querySelectorAll('[data-needs]'), function (el) {
      var ok = el.getAttribute('data-needs').split(',').some(function (r) { return C.may(r.trim()); });
      if (ok) el.removeAttribute('data-denied'); else el.setAttribute('data-denied', '');
    });
  };

  // A date input's day as the start or end of that day in the browser's time zone, as ISO.
  function dayBound(value, end) {
    var p = value.split('-');
    var d = end ? new Date(+p[0], +p[1] - 1, +p[2], 23, 59, 59, 999) : new Date(+p[0], +p[1] - 1, +p[2]);
    return d.toISOString();
  }

  /* A form's date inputs `from` and `to` as query parts (the audit and take-up cards): from the
     start of the first day to the end of the last. */
  C.dateRangeQuery = function (f) {
    var q = [];
    if (f.from.value) q.push('from=' + encodeURIComponent(dayBound(f.from.value, false)));
    if (f.to.value) q.push('to=' + encodeURIComponent(dayBound(f.to.value, true)));
    return q;
  };

  /* A request the console makes by itself (a timer's refresh of what the person already opened),
     not a person's consultation: the server does not audit it again (README, audit trail). */
  C.refresh = function (path) { return C.api('GET', path, undefined, { 'X-SceneLink-Refresh': '1' }); };
})();
