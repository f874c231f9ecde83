/* SceneLink console: the live panel for the watched session. Its state, trail and fixes come
   over a WebSocket (reconnected with backoff); the map follows the caller; the two-step
   "End session" button. The video itself is live-video.js. shares.js follows the watched
   session through #live's data-session-id and data-state. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var SceneLink = window.SceneLink;

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

  C.watchSession = function (id) {
    var els = C.els;
    id = String(id);
    if (C.live && C.live.id === id) { els.live.scrollIntoView && els.live.scrollIntoView({ block: 'start', behavior: 'smooth' }); return; }
    C.stopWatching();
    C.live = newLiveState(id);
    els.live.setAttribute('data-session-id', id);  // shares.js follows the watched session
    C.show(els.live, true);
    els.liveRef.textContent = '';
    els.livePhone.textContent = '';
    els.fixCount.textContent = '0';
    els.liveFrames.textContent = '0';
    setLastFix(null);
    disarmEnd();
    els.endSession.disabled = false;
    C.show(els.endSession, true);
    els.liveVideo.muted = true;
    els.unmute.textContent = 'Unmute';
    C.setVideoStatus('Waiting for video…');
    ensureLiveMap();
    resetLiveMap();
    if (C.liveMap) setTimeout(function () { if (C.liveMap) C.liveMap.map.invalidateSize(); }, 50);
    Object.keys(C.rows).forEach(function (rid) { C.rows[rid].li.classList.toggle('watching', rid === id); });
    if (C.sessions[id]) C.onLiveSession(C.sessions[id]);
    openWs();
    C.startFrameCounter();
    if (els.live.scrollIntoView) els.live.scrollIntoView({ block: 'start' });
  };

  C.stopWatching = function () {
    var els = C.els;
    if (!C.live) return;
    var l = C.live;
    C.live = null;
    l.ended = true;
    if (l.wsTimer) clearTimeout(l.wsTimer);
    SceneLink.closeSocket(l.ws);
    C.stopViewer(l);
    if (l.frameTimer) clearInterval(l.frameTimer);
    if (l.endTimer) clearTimeout(l.endTimer);
    try { els.liveVideo.srcObject = null; } catch (e) {}
    els.live.removeAttribute('data-session-id');
    C.show(els.live, false);
    Object.keys(C.rows).forEach(function (rid) { C.rows[rid].li.classList.remove('watching'); });
  };

  C.setVideoStatus = function (text) {
    C.els.liveVideoStatus.textContent = text || '';
    C.show(C.els.liveVideoStatus, !!text);
  };

  C.onLiveSession = function (s) {
    var els = C.els;
    var live = C.live;
    if (!live || String(s.id) !== live.id) return;
    live.session = s;
    C.renderInvite(s);
    els.liveRef.textContent = s.incident_ref || '';
    els.livePhone.textContent = s.phone_masked || '';
    els.liveState.textContent = C.stateLabel(s.state);
    els.liveState.setAttribute('data-state', s.state || '');
    els.liveRecording.textContent = C.recordingProblem(s);
    C.show(els.liveRecording, !!els.liveRecording.textContent);
    els.liveCallerState.textContent = C.callerLine(s);
    els.liveCallerState.setAttribute('data-ok', C.callerOk(s) ? 'true' : 'false');
    els.liveCallerDevice.textContent = [C.callerDevice(s), C.languageLine(s)].filter(Boolean).join(' · ');
    C.show(els.liveCallerDevice, !!els.liveCallerDevice.textContent);
    els.liveNetwork.textContent = s.state === 'ended' ? '' : C.networkLine(s);
    C.show(els.liveNetwork, !!els.liveNetwork.textContent);
    els.live.setAttribute('data-mode', C.media(s));
    els.live.setAttribute('data-state', s.state || '');
    if (C.isNum(s.fix_count) && s.fix_count > live.fixes) {
      els.fixCount.textContent = String(s.fix_count);
    }
    if (!live.lastFix && C.validFix(s.last_fix)) setLastFix(s.last_fix);
    var prev = live.prevState;
    live.prevState = s.state;
    if (s.state === 'ended') {
      onLiveEnded();
      return;
    }
    C.show(els.liveVideoBox, C.media(s) !== 'location');
    C.show(els.unmute, C.media(s) !== 'location');
    if (C.media(s) === 'location') return;
    if (s.state === 'live') {
      if (!live.viewer && !live.viewerTimer) C.startViewer();
      else if (live.viewer && prev && prev !== 'live' && live.viewerConnectedOnce) {
        // Caller reconnected: their media is new, so renegotiate our view of it.
        C.restartViewer(500);
      }
    } else if (!live.viewer) {
      C.setVideoStatus(s.state === 'reconnecting' ? 'Caller is reconnecting…' : 'Waiting for the caller to start sharing…');
    }
  };

  function onLiveEnded() {
    var live = C.live;
    if (!live) return;
    C.stopViewer(live);
    if (live.ws) { SceneLink.closeSocket(live.ws); live.ws = null; }
    if (live.wsTimer) { clearTimeout(live.wsTimer); live.wsTimer = null; }
    var s = live.session || {};
    C.setVideoStatus('Session ended' + (s.ended_by ? ' by ' + s.ended_by : '') + '.');
    disarmEnd();
    C.show(C.els.endSession, false);
  }

  /* ---------------- position ---------------- */

  function setLastFix(fix) {
    var els = C.els;
    var live = C.live;
    if (!live) {
      els.lastFix.removeAttribute('data-lat');
      els.lastFix.removeAttribute('data-lon');
      els.lastFix.textContent = 'none yet';
      window.ScenePlace.render(document.getElementById('live-place'), null);
      return;
    }
    live.lastFix = C.validFix(fix) ? fix : null;
    if (live.session) C.renderInvite(live.session);
    window.ScenePlace.render(document.getElementById('live-place'), live.lastFix);
    if (!live.lastFix) {
      els.lastFix.removeAttribute('data-lat');
      els.lastFix.removeAttribute('data-lon');
      els.lastFix.textContent = 'none yet';
      return;
    }
    els.lastFix.setAttribute('data-lat', String(fix.lat));
    els.lastFix.setAttribute('data-lon', String(fix.lon));
    C.updateLastFixText();
  }

  C.updateLastFixText = function () {
    var live = C.live;
    var age = C.els.liveFixAge;
    if (!live || !live.lastFix) { C.show(age, false); return; }
    var f = live.lastFix;
    var t = C.parseTime(f.received_at || f.device_time);
    var text = f.lat.toFixed(5) + ', ' + f.lon.toFixed(5);
    if (C.isNum(f.accuracy)) text += ' ±' + Math.round(f.accuracy) + ' m';
    if (isFinite(t)) text += ', ' + C.ago(Date.now() - t);
    C.els.lastFix.textContent = text;
    // Beside the caller's line: the last fix's age and accuracy, and whether it is stale.
    var fa = C.fixAge(f);
    if (!fa) { C.show(age, false); return; }
    age.textContent = (fa.stale ? 'Location stale: last fix ' : 'Last fix ') + C.ago(fa.seconds * 1000) +
      (C.isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '');
    age.setAttribute('data-age-s', String(fa.seconds));
    age.setAttribute('data-stale', fa.stale ? 'true' : 'false');
    C.show(age, true);
  };

  function onFix(fix, pan) {
    var live = C.live;
    if (!live || !C.validFix(fix)) return;
    live.fixes += 1;
    C.els.fixCount.textContent = String(Math.max(live.fixes, (live.session && C.isNum(live.session.fix_count)) ? live.session.fix_count : 0));
    setLastFix(fix);
    drawFix(fix, pan);
  }

  function ensureLiveMap() {
    if (C.liveMap || !C.els.liveMap) return C.liveMap;
    var m = C.makeMap(C.els.liveMap);
    C.liveMap = m;
    if (!m) return null;
    m.trail = L.polyline([], { color: '#1d70b8', weight: 4, opacity: 0.8 }).addTo(m.map);
    m.circle = null;
    m.marker = null;
    return m;
  }

  function resetLiveMap() {
    var m = C.liveMap;
    if (!m) return;
    m.trail.setLatLngs([]);
    if (m.marker) { m.map.removeLayer(m.marker); m.marker = null; }
    if (m.circle) { m.map.removeLayer(m.circle); m.circle = null; }
    m.fitted = false;
  }

  function drawFix(fix, pan) {
    var m = C.liveMap;
    if (!m || !C.validFix(fix)) return;
    var ll = [fix.lat, fix.lon];
    m.trail.addLatLng(ll);
    var acc = C.isNum(fix.accuracy) ? Math.max(fix.accuracy, 1) : 0;
    if (!m.marker) m.marker = L.marker(ll, { title: 'Caller position' }).addTo(m.map);
    else m.marker.setLatLng(ll);
    if (!m.circle) m.circle = L.circle(ll, { radius: acc, color: '#d4351c', weight: 2, fillOpacity: 0.12 }).addTo(m.map);
    else { m.circle.setLatLng(ll); m.circle.setRadius(acc); }
    if (pan) {
      if (!m.fitted) {
        m.fitted = true;
        m.map.setView(ll, acc > 500 ? 14 : 17);
      } else if (!m.map.getBounds().contains(ll)) {
        m.map.panTo(ll);
      }
    }
  }

  /* ---------------- WebSocket: trail, fixes and state for the watched session ---------------- */

  function onWsMessage(l, msg) {
    if (C.live !== l) return;
    // Every message to the panels that follow the watched session (chat.js).
    try { document.dispatchEvent(new CustomEvent('scenelink:live-message', { detail: { id: l.id, msg: msg } })); } catch (e) {}
    if (msg.type === 'trail') {
      l.fixes = 0;
      resetLiveMap();
      var fixes = Array.isArray(msg.fixes) ? msg.fixes : [];
      fixes.forEach(function (f) { onFix(f, false); });
      var m = C.liveMap;
      if (m && fixes.length) {
        var b = m.trail.getBounds();
        if (b.isValid()) {
          m.fitted = true;
          m.map.fitBounds(b.pad(0.3), { maxZoom: 17 });
        }
      }
      if (!fixes.length) C.els.fixCount.textContent = String(l.session && C.isNum(l.session.fix_count) ? l.session.fix_count : 0);
    } else if (msg.type === 'fix') {
      onFix(msg.fix, true);
    } else if (msg.type === 'place') {
      if (window.ScenePlace.merge(l.lastFix, msg.place)) {
        window.ScenePlace.render(document.getElementById('live-place'), l.lastFix);
      }
    } else if (msg.type === 'state' && msg.session) {
      C.sessions[String(msg.session.id)] = msg.session;
      C.updateRow(String(msg.session.id));
      C.onLiveSession(msg.session);
    }
  }

  function openWs() {
    var l = C.live;
    if (!l || l.ended || !window.WebSocket) return;
    var ws = SceneLink.openSocket('/api/sessions/' + encodeURIComponent(l.id) + '/ws', {
      open: function () { l.wsAttempt = 0; },
      message: function (msg) { onWsMessage(l, msg); },
      close: function (ev) {
        if (C.live !== l || l.ended) return;
        l.ws = null;
        if (ev && ev.code === 4403) { C.setVideoStatus('Access ended.'); C.stopViewer(l); return; }
        if (ev && (ev.code === 4401 || ev.code === 4404)) return;
        if (l.session && l.session.state === 'ended') return;
        scheduleWs(l);
      }
    });
    if (!ws) { scheduleWs(l); return; }
    l.ws = ws;
  }

  function scheduleWs(l) {
    if (l.wsTimer || l.ended) return;
    var d = C.backoff(l.wsAttempt);
    l.wsAttempt += 1;
    l.wsTimer = setTimeout(function () { l.wsTimer = null; if (C.live === l) openWs(); }, d);
  }

  /* ---------------- two-step end button ---------------- */

  function disarmEnd() {
    var live = C.live;
    var els = C.els;
    if (live && live.endTimer) { clearTimeout(live.endTimer); live.endTimer = null; }
    if (live) live.endArmed = false;
    els.endSession.textContent = 'End session';
    els.endSession.classList.remove('armed');
    C.show(els.endSessionHint, false);
  }

  C.onEndSessionClick = function () {
    var els = C.els;
    var l = C.live;
    if (!l) return;
    if (!l.endArmed) {
      l.endArmed = true;
      els.endSession.textContent = 'Confirm end';
      els.endSession.classList.add('armed');
      C.show(els.endSessionHint, true);
      l.endTimer = setTimeout(function () { if (C.live === l) disarmEnd(); }, 6000);
      return;
    }
    disarmEnd();
    C.endSession(l.id, els.endSession);
  };
})();
