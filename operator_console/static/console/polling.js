/* SceneLink console: what is asked of the server while signed in, and only what the signed-in
   role may use (C.may). The sessions list and the SMS outbox every two seconds, the recordings
   every fifteen (a background refresh, not audited again), and a one-second tick for the ages. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ApiError = window.SceneLink.ApiError;
  var pollTimer = null;
  var recTimer = null;
  var tickTimer = null;
  var polling = false;

  C.startPolling = function () {
    C.stopPolling();
    C.pollOnce();
    pollTimer = setInterval(C.pollOnce, C.POLL_MS);
    C.loadRecordings();
    recTimer = setInterval(function () { C.loadRecordings(true); }, C.RECORDINGS_POLL_MS);
    tickTimer = setInterval(tick, 1000);
  };

  C.stopPolling = function () {
    if (pollTimer) clearInterval(pollTimer);
    if (recTimer) clearInterval(recTimer);
    if (tickTimer) clearInterval(tickTimer);
    pollTimer = recTimer = tickTimer = null;
  };

  C.pollOnce = async function () {
    if (!C.me || polling) return;
    polling = true;
    try {
      if (C.may('GET /api/sessions')) C.renderSessions(((await C.api('GET', '/api/sessions')) || {}).sessions || []);
      C.globalError('');
    } catch (e) {
      if (!(e instanceof ApiError)) C.globalError('Connection to the server lost. Retrying…');
    }
    if (C.may('GET /api/sms/outbox')) await C.pollOutbox();
    polling = false;
  };

  function tick() {
    Object.keys(C.rows).forEach(function (id) { C.updateRowAge(id); });
    C.updateLastFixText();
  }
})();
