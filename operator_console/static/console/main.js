/* SceneLink console: starting the page. Looks the elements up once, wires each panel's handlers
   and asks the server who is signed in. Loaded last. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var $ = function (id) { return document.getElementById(id); };

  function init() {
    var els = C.els = {
      boot: $('boot-message'), globalError: $('global-error'),
      forceName: $('force-name'), userBox: $('user-box'), username: $('username'), userRoles: $('user-roles'), logout: $('logout'),
      loginSection: $('login-section'), loginForm: $('login-form'), loginError: $('login-error'),
      app: $('app'), sendForm: $('send-form'), sendError: $('send-error'), sendSuccess: $('send-success'),
      sessions: $('sessions'), sessionsEmpty: $('sessions-empty'),
      outboxPanel: $('outbox-panel'), outbox: $('outbox'), outboxEmpty: $('outbox-empty'),
      live: $('live'), liveRef: $('live-ref'), livePhone: $('live-phone'), liveState: $('live-state'), liveRecording: $('live-recording'), liveCallerState: $('live-caller-state'), liveCallerDevice: $('live-caller-device'), liveNetwork: $('live-network'), liveFixAge: $('live-fix-age'), closeLive: $('close-live'),
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
    C.show(els.boot, false);

    els.loginForm.addEventListener('submit', C.onLoginSubmit);
    els.logout.addEventListener('click', C.logout);
    els.sendForm.addEventListener('submit', C.onSendSubmit);
    els.closeLive.addEventListener('click', C.stopWatching);
    els.endSession.addEventListener('click', C.onEndSessionClick);
    els.refreshRecordings.addEventListener('click', C.refreshRecordings);
    els.recordingSearch.addEventListener('submit', C.onSearchSubmit);
    els.areaFromMap.addEventListener('click', C.areaFromMap);
    els.exportForm.addEventListener('submit', C.onExportSubmit);
    els.exportPhone.addEventListener('click', C.onExportPhone);
    els.playbackVideo.addEventListener('timeupdate', C.syncPlaybackMarker);
    els.playbackVideo.addEventListener('ended', C.playNextPart);
    els.playbackVideo.addEventListener('seeked', C.syncPlaybackMarker);
    els.unmute.addEventListener('click', C.toggleMute);
    els.liveVideo.addEventListener('volumechange', C.onVolumeChange);

    C.checkMe();
  }

  window.addEventListener('error', function (ev) {
    if (C.els.globalError) C.globalError('Something went wrong in the console page' + (ev && ev.message ? ': ' + ev.message : '') + '. Reload if it misbehaves.');
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
