/* SceneLink console: playing a recording back. Its parts one after another, and the location
   trail on a map with a marker that follows the video. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var playback = null;        // { id, fixes, times, parts, part, marker }
  var playbackLayer = null;

  /* The marker follows the video: a part's first frame has a server wall-clock time, and
     each fix its server receive time, so the fix shown is the last one received by then. */
  C.syncPlaybackMarker = function () {
    var els = C.els;
    if (!playback || !playback.part || !playback.fixes.length) return;
    var start = playback.part.first_frame_wall_clock;
    if (!C.isNum(start)) return;
    var at = (start + (els.playbackVideo.currentTime || 0)) * 1000;
    var i = 0;
    while (i + 1 < playback.times.length && playback.times[i + 1] <= at) i++;
    var f = playback.fixes[i];
    els.playbackPosition.textContent = f.lat.toFixed(5) + ', ' + f.lon.toFixed(5) +
      (C.isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '') +
      (f.received_at ? ' at ' + C.fmtDate(f.received_at) : '');
    els.playbackPosition.setAttribute('data-lat', String(f.lat));
    els.playbackPosition.setAttribute('data-lon', String(f.lon));
    els.playbackPosition.setAttribute('data-index', String(i));
    if (playback.marker) playback.marker.setLatLng([f.lat, f.lon]);
  };

  function playPart(part) {
    var v = C.els.playbackVideo;
    v.pause();
    if (playback) playback.part = part;
    v.src = part.url;
    var p = v.play();
    if (p && p.catch) p.catch(function () {});
  }

  /* A recording is several parts: playback runs on from one to the next. */
  C.playNextPart = function () {
    if (!playback || !playback.part) return;
    var next = playback.parts[playback.parts.indexOf(playback.part) + 1];
    if (next) playPart(next);
  };

  C.resetPlayback = function () {
    var els = C.els;
    playback = null;
    C.show(els.playback, false);
    try { els.playbackVideo.pause(); els.playbackVideo.removeAttribute('src'); els.playbackVideo.load(); } catch (e) {}
  };

  C.playRecording = async function (id) {
    var els = C.els;
    var r = C.recordings[id];
    if (!r) return;
    C.show(els.playback, true);
    els.playbackRef.textContent = (r.incident_ref || '') + (r.started_at ? ' – ' + C.fmtDate(r.started_at) : '');
    els.playback.setAttribute('data-session-id', id);
    els.playbackPosition.textContent = '–';
    ['data-lat', 'data-lon', 'data-index'].forEach(function (a) { els.playbackPosition.removeAttribute(a); });
    var parts = Array.isArray(r.parts) ? r.parts.filter(function (p) { return p && p.url; }) : [];
    playback = { id: id, fixes: [], times: [], parts: parts, part: parts[0] || null, marker: null };
    C.clear(els.playbackParts);
    var v = els.playbackVideo;
    if (parts.length) {
      C.show(v, true);
      playPart(parts[0]);
      if (parts.length > 1) {
        parts.forEach(function (p, i) {
          var b = C.mk('button', 'btn btn-small part', 'Part ' + (i + 1) + (C.isNum(p.duration_s) ? ' (' + C.fmtDuration(p.duration_s) + ')' : ''));
          b.type = 'button';
          b.addEventListener('click', function () { playPart(p); });
          els.playbackParts.appendChild(b);
        });
      }
    } else {
      try { v.pause(); v.removeAttribute('src'); v.load(); } catch (e) {}
      C.show(v, false);
      els.playbackParts.appendChild(C.mk('p', 'muted', 'No video was recorded for this session.'));
    }

    if (!C.playbackMap) C.playbackMap = C.makeMap(els.playbackMap);
    var pm = C.playbackMap;
    if (pm) {
      setTimeout(function () { pm.map.invalidateSize(); }, 50);
      if (playbackLayer) { pm.map.removeLayer(playbackLayer); playbackLayer = null; }
    }
    els.playbackTrailStatus.textContent = 'Loading location trail…';
    try {
      var data = await C.api('GET', r.trail_url);
      if (!playback || playback.id !== id) return;
      var fixes = ((data && data.fixes) || []).filter(C.validFix);
      playback.fixes = fixes;
      playback.times = fixes.map(function (f) { return C.parseTime(f.received_at); });
      els.playbackTrailStatus.textContent = fixes.length ? fixes.length + ' location fixes' : 'No location was recorded.';
      if (!fixes.length) return;
      C.syncPlaybackMarker();
      if (!C.playbackMap) return;
      var lls = fixes.map(function (f) { return [f.lat, f.lon]; });
      playbackLayer = L.featureGroup();
      L.polyline(lls, { color: '#1d70b8', weight: 4 }).addTo(playbackLayer);
      L.circleMarker(lls[0], { radius: 7, color: '#00703c', fillOpacity: 0.9 }).bindTooltip('Start').addTo(playbackLayer);
      playback.marker = L.marker(lls[0], { title: 'Position at this moment of the video' }).addTo(playbackLayer);
      playbackLayer.addTo(C.playbackMap.map);
      C.playbackMap.map.fitBounds(playbackLayer.getBounds().pad(0.3), { maxZoom: 17 });
      C.syncPlaybackMarker();
    } catch (e) {
      els.playbackTrailStatus.textContent = 'Could not load the location trail.';
    }
  };
})();
