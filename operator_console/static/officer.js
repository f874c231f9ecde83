/* SceneLink officer link page: live video, the caller's position and trail, and the distance and
   bearing from this tablet. Plain ES2017, no build step, CSP-safe. The link's token authenticates
   every call (bearer header; first message on the WebSocket). */
(function () {
  'use strict';

  var SceneLink = window.SceneLink;
  var MAX_BACKOFF_MS = 15000;
  var POSITION_EVERY_MS = 3000;
  var COMPASS = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];

  var $ = function (id) { return document.getElementById(id); };
  var token = decodeURIComponent(location.pathname.replace(/^\/o\//, ''));
  var els = {};
  var ended = false;
  var skewMs = 0;             // server clock minus ours
  var staleS = 30;            // a fix older than this is stale (the server's fix_stale_s)
  var lastFix = null;
  var ws = null, wsAttempt = 0, wsTimer = null;
  var pc = null, viewerAttempt = 0, viewerTimer = null, viewerGen = 0;
  var sessionState = null, sessionMode = 'video';
  var geoWatch = null, myPosition = null, positionSentAt = 0;
  var map = null, trail = null, marker = null, circle = null, meMarker = null, fitted = false;
  var frames = { rvfc: 0, base: 0, shown: -1 };

  function show(el, on) { if (on) el.removeAttribute('hidden'); else el.setAttribute('hidden', ''); }
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function backoff(n) { return SceneLink.backoff(n, MAX_BACKOFF_MS); }

  /* The link's token is the only credential (no cookie). Refused, withdrawn or expired: the page
     says so and stops ("Access ended: <why>"). */
  var api = SceneLink.client({
    token: token, credentials: 'omit', authLostOn: [401, 403, 410],
    onAuthLost: function (err) { endAccess(SceneLink.errorText(err)); }
  });

  /* ---------------- access ended ---------------- */

  function endAccess(reason) {
    if (ended) return;
    ended = true;
    document.body.setAttribute('data-access', 'ended');
    els.endedReason.textContent = reason || 'access ended';
    show(els.ended, true);
    show(els.boot, false);
    if (wsTimer) clearTimeout(wsTimer);
    if (viewerTimer) clearTimeout(viewerTimer);
    if (ws) { SceneLink.closeSocket(ws); ws = null; }
    stopViewer();
    try { els.video.srcObject = null; } catch (e) {}
    setVideoStatus('Access ended.');
    if (geoWatch !== null) { navigator.geolocation.clearWatch(geoWatch); geoWatch = null; }
  }

  /* ---------------- map and position ---------------- */

  function makeMap(config) {
    if (!window.L) { els.map.textContent = 'Map unavailable; positions are shown as text.'; return; }
    map = L.map(els.map).setView([54.0, -2.5], 6);
    if (config.tile_url) {
      var attribution = document.createElement('span');
      attribution.textContent = String(config.tile_attribution || '');
      L.tileLayer(config.tile_url, { maxZoom: 19, attribution: attribution.innerHTML }).addTo(map);
    }
    trail = L.polyline([], { color: '#1d70b8', weight: 4, opacity: 0.8 }).addTo(map);
  }

  function drawFix(fix) {
    if (!fix || !isNum(fix.lat) || !isNum(fix.lon)) return;
    lastFix = fix;
    var text = fix.lat.toFixed(5) + ', ' + fix.lon.toFixed(5);
    if (isNum(fix.accuracy)) text += ' ±' + Math.round(fix.accuracy) + ' m';
    els.lastFix.textContent = text;
    els.lastFix.setAttribute('data-lat', String(fix.lat));
    els.lastFix.setAttribute('data-lon', String(fix.lon));
    window.ScenePlace.render(document.getElementById('place'), fix, { navigate: true });
    updateAge();
    if (!map) return;
    var ll = [fix.lat, fix.lon];
    trail.addLatLng(ll);
    var radius = Math.max(isNum(fix.accuracy) ? fix.accuracy : 1, 1);
    if (!marker) {
      marker = L.marker(ll, { title: 'Caller' }).addTo(map);
      circle = L.circle(ll, { radius: radius, color: '#d4351c', weight: 2, fillOpacity: 0.12 }).addTo(map);
    } else {
      marker.setLatLng(ll);
      circle.setLatLng(ll);
      circle.setRadius(radius);
    }
    if (!fitted) { fitted = true; map.setView(ll, radius > 500 ? 14 : 17); }
    else if (!map.getBounds().contains(ll)) map.panTo(ll);
  }

  function updateAge() {
    var fa = window.SceneLink.fixAge(lastFix, staleS, Date.now() + skewMs);
    if (!fa) return;
    var s = fa.seconds;
    els.fixAge.textContent = s < 90 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
    els.fixAge.setAttribute('data-age-s', String(s));
    els.fixAge.classList.toggle('stale', fa.stale);
  }

  function showBearing(msg) {
    var d = msg.distance_m;
    var text = d < 1000 ? Math.round(d) + ' m' : (d / 1000).toFixed(d < 10000 ? 2 : 1) + ' km';
    var b = Math.round(msg.bearing_deg) % 360;
    text += ', bearing ' + b + '° (' + COMPASS[Math.round(b / 45) % 8] + ')';
    els.distance.textContent = text;
    els.distance.setAttribute('data-distance-m', String(d));
    els.distance.setAttribute('data-bearing-deg', String(msg.bearing_deg));
  }

  function sendPosition(force) {
    if (!myPosition || !ws || ws.readyState !== 1) return;
    var now = Date.now();
    if (!force && now - positionSentAt < POSITION_EVERY_MS) return;
    positionSentAt = now;
    ws.send(JSON.stringify(myPosition));
  }

  function watchMyPosition() {
    if (!('geolocation' in navigator)) { els.distance.textContent = 'this device cannot share its position'; return; }
    geoWatch = navigator.geolocation.watchPosition(function (p) {
      var c = p.coords;
      myPosition = { type: 'position', lat: c.latitude, lon: c.longitude, accuracy: c.accuracy, timestamp: p.timestamp };
      if (map) {
        var ll = [c.latitude, c.longitude];
        if (!meMarker) meMarker = L.circleMarker(ll, { radius: 7, color: '#00703c', fillOpacity: 0.9 }).bindTooltip('You').addTo(map);
        else meMarker.setLatLng(ll);
      }
      sendPosition(false);
    }, function (err) {
      if (err && err.code === 1) els.distance.textContent = 'position not shared (permission refused)';
      // code 2/3: a transient failure; the next fix follows.
    }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  }

  /* ---------------- live feed ---------------- */

  function onState(s) {
    if (!s) return;
    sessionState = s.state;
    sessionMode = s.media || (s.mode === 'location' ? 'location' : 'video');  // what is shared
    els.incident.textContent = s.incident_ref || '';
    els.state.textContent = s.state || '';
    els.state.setAttribute('data-state', s.state || '');
    if (sessionMode === 'location') { setVideoStatus('Location only: no video in this session.'); return; }
    if (s.state === 'live' && !pc && !viewerTimer) startViewer();
    else if (s.state !== 'live' && !pc) setVideoStatus(s.state === 'reconnecting' ? 'Caller is reconnecting…' : 'Waiting for the caller to start sharing…');
  }

  function openWs() {
    if (ended || !window.WebSocket) return;
    var socket = SceneLink.openSocket('/api/officer/ws', {
      open: function (s) {
        s.send(JSON.stringify({ type: 'auth', token: token }));
        wsAttempt = 0;
        sendPosition(true);
      },
      message: function (msg) {
        if (msg.type === 'trail') { if (trail) trail.setLatLngs([]); (msg.fixes || []).forEach(drawFix); sendPosition(true); }
        else if (msg.type === 'fix') drawFix(msg.fix);
        else if (msg.type === 'place') {
          if (window.ScenePlace.merge(lastFix, msg.place)) {
            window.ScenePlace.render(document.getElementById('place'), lastFix, { navigate: true });
          }
        }
        else if (msg.type === 'state') onState(msg.session);
        else if (msg.type === 'bearing') showBearing(msg);
        else if (msg.type === 'access_ended') endAccess(msg.reason);
        try { document.dispatchEvent(new CustomEvent('scenelink:officer-message', { detail: msg })); } catch (e) {}
      },
      close: function () {
        if (ws !== socket || ended) return;
        ws = null;
        retryWs();
      }
    });
    ws = socket;
    if (!socket) retryWs();
  }

  function retryWs() {
    wsTimer = setTimeout(function () { wsTimer = null; openWs(); }, backoff(wsAttempt++));
  }

  /* ---------------- video (receive only) ---------------- */

  function setVideoStatus(text) { els.videoStatus.textContent = text || ''; show(els.videoStatus, !!text); }

  function stopViewer() {
    viewerGen += 1;
    if (pc) { pc.ontrack = null; pc.onconnectionstatechange = null; try { pc.close(); } catch (e) {} pc = null; }
  }

  function retryViewer() {
    if (ended || viewerTimer) return;
    stopViewer();
    viewerTimer = setTimeout(function () { viewerTimer = null; if (sessionState === 'live') startViewer(); }, backoff(viewerAttempt++));
  }

  async function startViewer() {
    if (ended || pc || !window.RTCPeerConnection) return;
    var gen = ++viewerGen;
    var conn = new RTCPeerConnection({ iceServers: iceServers, iceTransportPolicy: iceTransportPolicy });
    pc = conn;
    setVideoStatus('Connecting to video…');
    conn.addTransceiver('video', { direction: 'recvonly' });
    conn.addTransceiver('audio', { direction: 'recvonly' });
    var stream = new MediaStream();
    conn.ontrack = function (ev) {
      if (gen !== viewerGen) return;
      stream.addTrack(ev.track);
      if (els.video.srcObject !== stream) { frames.base = frames.shown > 0 ? frames.shown : 0; els.video.srcObject = stream; }
      var p = els.video.play();
      if (p && p.catch) p.catch(function () {});
      setVideoStatus('');
    };
    conn.onconnectionstatechange = function () {
      if (gen !== viewerGen) return;
      if (conn.connectionState === 'connected') viewerAttempt = 0;
      else if (conn.connectionState === 'failed' || conn.connectionState === 'closed') {
        setVideoStatus('Video connection lost. Retrying…');
        retryViewer();
      }
    };
    try {
      await conn.setLocalDescription(await conn.createOffer());
      await SceneLink.waitForIce(conn);
      if (gen !== viewerGen) return;
      var answer = await api('POST', '/api/officer/viewers', { sdp: conn.localDescription.sdp, type: 'offer' });
      if (gen !== viewerGen) return;
      await conn.setRemoteDescription({ sdp: answer.sdp, type: 'answer' });
    } catch (e) {
      if (gen !== viewerGen || ended) return;
      setVideoStatus('Video not available yet. Retrying…');
      retryViewer();
    }
  }

  function decodedFrames() {
    var v = els.video;
    try {
      if (typeof v.getVideoPlaybackQuality === 'function') return v.getVideoPlaybackQuality().totalVideoFrames || 0;
      if (typeof v.webkitDecodedFrameCount === 'number') return v.webkitDecodedFrameCount;
    } catch (e) {}
    return 0;
  }

  function countFrames() {
    var v = els.video;
    if (typeof v.requestVideoFrameCallback === 'function') {
      var onFrame = function () { frames.rvfc += 1; v.requestVideoFrameCallback(onFrame); };
      v.requestVideoFrameCallback(onFrame);
    }
    setInterval(function () {
      if (ended) return;
      var n = Math.max(frames.rvfc, frames.base + decodedFrames());
      if (n !== frames.shown) { frames.shown = n; els.frames.textContent = String(n); }
      updateAge();
    }, 1000);
  }

  /* ---------------- start ---------------- */

  var iceServers = [];
  var iceTransportPolicy = 'all';

  async function start() {
    var info;
    try { info = await api('GET', '/api/officer/share'); } catch (e) {
      if (!ended) { els.boot.textContent = 'Cannot reach the server. Retrying…'; setTimeout(start, backoff(2)); }
      return;
    }
    show(els.boot, false);
    show(els.app, true);
    skewMs = Date.parse(info.server_time) - Date.now() || 0;
    if (typeof info.fix_stale_s === 'number') staleS = info.fix_stale_s;
    iceServers = info.ice_servers || [];
    iceTransportPolicy = info.ice_transport_policy || 'all';
    els.forceName.textContent = info.force_name || '';
    if (info.expires_at) {
      els.expires.textContent = new Date(Date.parse(info.expires_at) - skewMs).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
    }
    makeMap(info);
    if (info.session && info.session.last_fix) drawFix(info.session.last_fix);
    onState(info.session);
    countFrames();
    openWs();
    watchMyPosition();
  }

  function init() {
    els = {
      boot: $('boot-message'), app: $('app'), ended: $('ended'), endedReason: $('ended-reason'),
      forceName: $('force-name'), incident: $('incident'), state: $('state'), expires: $('expires'),
      video: $('video'), videoStatus: $('video-status'), unmute: $('unmute'), frames: $('frames'),
      lastFix: $('last-fix'), fixAge: $('fix-age'), distance: $('distance'), map: $('map')
    };
    els.unmute.addEventListener('click', function () {
      els.video.muted = !els.video.muted;
      els.unmute.textContent = els.video.muted ? 'Unmute' : 'Mute';
      var p = els.video.play();
      if (p && p.catch) p.catch(function () {});
    });
    if (document.body.getAttribute('data-access') !== 'ok' || !window.fetch) {
      ended = true;
      show(els.boot, false);
      show(els.ended, true);
      return;
    }
    start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
