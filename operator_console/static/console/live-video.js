/* SceneLink console: the live panel's video. A receive-only WebRTC viewer of the watched
   session (retried with backoff, renegotiated when the caller reconnects), the frame counter
   in #live-frames with its stall watchdog, and the Unmute button. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var SceneLink = window.SceneLink;
  var ApiError = SceneLink.ApiError;

  C.stopViewer = function (l) {
    if (!l) return;
    if (l.viewerTimer) { clearTimeout(l.viewerTimer); l.viewerTimer = null; }
    l.viewerGen += 1;
    if (l.viewer) {
      try { l.viewer.pc.ontrack = null; l.viewer.pc.onconnectionstatechange = null; l.viewer.pc.close(); } catch (e) {}
      l.viewer = null;
    }
  };

  C.restartViewer = function (delay) {
    var l = C.live;
    if (!l) return;
    C.stopViewer(l);
    l.viewerTimer = setTimeout(function () { l.viewerTimer = null; if (C.live === l) C.startViewer(); }, delay);
  };

  function scheduleViewerRetry(l) {
    if (C.live !== l || l.ended || l.viewerTimer) return;
    if (l.session && l.session.state === 'ended') return;
    C.stopViewer(l);
    var d = C.backoff(l.viewerAttempt);
    l.viewerAttempt += 1;
    l.viewerTimer = setTimeout(function () { l.viewerTimer = null; if (C.live === l) C.startViewer(); }, d);
  }

  C.startViewer = async function () {
    var l = C.live;
    if (!l || l.ended || l.viewer) return;
    if (!window.RTCPeerConnection) { C.setVideoStatus('This browser cannot show live video.'); return; }
    var gen = ++l.viewerGen;
    var v = { pc: null, stream: null, startedAt: Date.now() };
    l.viewer = v;
    C.setVideoStatus('Connecting to video…');
    try {
      var ice = await C.api('GET', '/api/sessions/' + encodeURIComponent(l.id) + '/ice');
      if (gen !== l.viewerGen || C.live !== l) return;
      var pc = new RTCPeerConnection({ iceServers: (ice && ice.ice_servers) || [], iceTransportPolicy: (ice && ice.ice_transport_policy) || 'all' });
      v.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = function (ev) {
        if (gen !== l.viewerGen || C.live !== l) return;
        if (!v.stream) {
          v.stream = (typeof MediaStream === 'function') ? new MediaStream() : (ev.streams && ev.streams[0]);
        }
        try { if (v.stream.getTracks().indexOf(ev.track) === -1) v.stream.addTrack(ev.track); } catch (e) {}
        var video = C.els.liveVideo;
        if (video.srcObject !== v.stream) {
          addQualityBase();
          video.srcObject = v.stream;
        }
        var p = video.play();
        if (p && p.catch) p.catch(function () {});
        C.setVideoStatus('');
      };
      pc.onconnectionstatechange = function () {
        if (gen !== l.viewerGen || C.live !== l) return;
        var st = pc.connectionState;
        if (st === 'connected') {
          l.viewerAttempt = 0;
          l.viewerConnectedOnce = true;
          C.setVideoStatus('');
        } else if (st === 'failed' || st === 'closed') {
          C.setVideoStatus('Video connection lost. Retrying…');
          scheduleViewerRetry(l);
        } else if (st === 'disconnected') {
          C.setVideoStatus('Video interrupted…');
          setTimeout(function () {
            if (gen === l.viewerGen && C.live === l && pc.connectionState === 'disconnected') scheduleViewerRetry(l);
          }, 4000);
        }
      };
      var offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await SceneLink.waitForIce(pc);
      if (gen !== l.viewerGen || C.live !== l) return;
      var answer = await C.api('POST', '/api/sessions/' + encodeURIComponent(l.id) + '/viewers', {
        sdp: pc.localDescription.sdp, type: pc.localDescription.type
      });
      if (gen !== l.viewerGen || C.live !== l) return;
      await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type || 'answer' });
    } catch (e) {
      if (gen !== l.viewerGen || C.live !== l) return;
      if (e instanceof ApiError && e.status === 403) {
        C.setVideoStatus('You do not have permission to view this video.');
        C.stopViewer(l);
        return;
      }
      if (e instanceof ApiError && e.status === 410) {  // the share ended or the session did
        C.setVideoStatus('Access ended: ' + SceneLink.errorText(e) + '.');
        C.stopViewer(l);
        return;
      }
      C.setVideoStatus('Video not available yet' + (e instanceof ApiError ? ' (' + SceneLink.errorText(e) + ')' : '') + '. Retrying…');
      scheduleViewerRetry(l);
    }
  };

  /* ---------------- frame counter: a bare integer in #live-frames ---------------- */

  function qualityFrames() {
    var video = C.els.liveVideo;
    try {
      if (typeof video.getVideoPlaybackQuality === 'function') return video.getVideoPlaybackQuality().totalVideoFrames || 0;
      if (typeof video.webkitDecodedFrameCount === 'number') return video.webkitDecodedFrameCount;
    } catch (e) {}
    return 0;
  }

  function addQualityBase() {
    if (!C.live) return;
    C.live.qBase += qualityFrames();
  }

  C.startFrameCounter = function () {
    var l = C.live;
    var video = C.els.liveVideo;
    var hasRvfc = typeof video.requestVideoFrameCallback === 'function';
    function onFrame() {
      if (C.live !== l) return;
      l.rvfc += 1;
      video.requestVideoFrameCallback(onFrame);
    }
    if (hasRvfc) video.requestVideoFrameCallback(onFrame);
    l.lastFrameAt = Date.now();
    l.frameTimer = setInterval(function () {
      if (C.live !== l) return;
      var now = Date.now();
      var n = Math.max(l.rvfc, l.qBase + qualityFrames());
      if (n !== l.frames) {
        l.frames = n;
        l.lastFrameAt = now;
        l.stallRestarts = 0;
        C.els.liveFrames.textContent = String(n);
        return;
      }
      // Watchdog: video was flowing, the session is live, but frames stopped
      // (e.g. the caller reconnected and the server gave us a dead track).
      var s = l.session;
      var v = l.viewer;
      if (n > 0 && s && s.state === 'live' && C.media(s) !== 'location' && v && v.pc && !l.viewerTimer &&
          v.startedAt && now - v.startedAt > 8000 &&
          now - l.lastFrameAt > Math.min(C.MAX_BACKOFF_MS, 5000 * Math.pow(2, l.stallRestarts || 0))) {
        l.stallRestarts = (l.stallRestarts || 0) + 1;
        l.lastFrameAt = now;
        C.setVideoStatus('Video paused. Reconnecting…');
        C.restartViewer(0);
      }
    }, 500);
  };

  /* ---------------- sound ---------------- */

  C.toggleMute = function () {
    var v = C.els.liveVideo;
    v.muted = !v.muted;
    C.els.unmute.textContent = v.muted ? 'Unmute' : 'Mute';
    var p = v.play();
    if (p && p.catch) p.catch(function () {});
  };

  C.onVolumeChange = function () {
    C.els.unmute.textContent = C.els.liveVideo.muted ? 'Unmute' : 'Mute';
  };
})();
