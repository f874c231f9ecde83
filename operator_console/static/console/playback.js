/* SceneLink console: playing a recording back. The whole session is one working copy (every part
   remuxed onto one clock, the gaps kept), so the player seeks anywhere; the timeline under it
   (timeline.js) and the trail on a map with a marker that follow the video. Should the working
   copy fail to play, the parts play one after another on the same clock. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var playback = null;  // { id, fixes, parts, part, marker, whole }
  var playbackLayer = null;

  /* Where the player is on the session's clock: the working copy's time is that clock; a part
     starts at its offset on it. */
  function sessionTime() {
    var t = C.els.playbackVideo.currentTime || 0;
    return playback && !playback.whole && playback.part ? playback.part.offset_s + t : t;
  }
  C.playbackTime = sessionTime;  // redact.js marks boxes and mutes at this time

  /* The marker follows the video: each fix sits on the session's clock by its receive time, so
     the fix shown is the last one received by the moment shown. */
  C.syncPlaybackMarker = function () {
    var els = C.els;
    if (!playback) return;
    var t = sessionTime();
    C.timelineAt(t);
    if (!playback.fixes.length) return;
    var i = 0;
    while (i + 1 < playback.fixes.length && playback.fixes[i + 1].offset_s <= t) i++;
    var f = playback.fixes[i];
    els.playbackPosition.textContent = f.lat.toFixed(5) + ', ' + f.lon.toFixed(5) +
      (C.isNum(f.accuracy) ? ' (±' + Math.round(f.accuracy) + ' m)' : '') +
      (f.received_at ? ' at ' + C.fmtDate(f.received_at) : '');
    els.playbackPosition.setAttribute('data-lat', String(f.lat));
    els.playbackPosition.setAttribute('data-lon', String(f.lon));
    els.playbackPosition.setAttribute('data-index', String(i));
    if (playback.marker) playback.marker.setLatLng([f.lat, f.lon]);
  };

  function start(v, src, at) {
    v.pause();
    v.src = src;
    if (at > 0) v.addEventListener('loadedmetadata', function once() { v.removeEventListener('loadedmetadata', once); v.currentTime = at; });
    var p = v.play();
    if (p && p.catch) p.catch(function () {});
  }

  function playPart(part, at) {
    if (playback) playback.part = part;
    start(C.els.playbackVideo, part.url, at || 0);
  }

  /* Seek to ``t`` seconds on the session's clock. */
  C.seekPlayback = function (t) {
    if (!playback) return;
    var v = C.els.playbackVideo;
    if (playback.whole) {
      v.currentTime = Math.max(0, t);
    } else if (playback.parts.length) {
      var part = playback.parts[0];
      playback.parts.forEach(function (p) { if (p.offset_s <= t) part = p; });
      var within = Math.max(0, t - part.offset_s);
      if (part === playback.part) v.currentTime = within;
      else playPart(part, within);
    }
    C.syncPlaybackMarker();
  };

  /* Only when the parts play one by one: run on from one to the next. */
  C.playNextPart = function () {
    if (!playback || playback.whole || !playback.part) return;
    var next = playback.parts[playback.parts.indexOf(playback.part) + 1];
    if (next) playPart(next, 0);
  };

  function partsOneByOne(id) {
    if (!playback || playback.id !== id || !playback.whole || !playback.parts.length) return;
    playback.whole = false;
    C.els.playbackTrailStatus.textContent = 'The whole-session copy could not be played: playing the recorded parts one after another.';
    playPart(playback.parts[0], 0);
  }

  C.resetPlayback = function () {
    var els = C.els;
    playback = null;
    C.show(els.playback, false);
    C.clearTimeline();
    try { els.playbackVideo.pause(); els.playbackVideo.removeAttribute('src'); els.playbackVideo.load(); } catch (e) {}
  };

  function drawTrail(fixes) {
    if (!C.playbackMap || !fixes.length) return;
    var lls = fixes.map(function (f) { return [f.lat, f.lon]; });
    playbackLayer = L.featureGroup();
    L.polyline(lls, { color: '#1d70b8', weight: 4 }).addTo(playbackLayer);
    L.circleMarker(lls[0], { radius: 7, color: '#00703c', fillOpacity: 0.9 }).bindTooltip('Start').addTo(playbackLayer);
    playback.marker = L.marker(lls[0], { title: 'Position at this moment of the video' }).addTo(playbackLayer);
    playbackLayer.addTo(C.playbackMap.map);
    C.playbackMap.map.fitBounds(playbackLayer.getBounds().pad(0.3), { maxZoom: 17 });
  }

  C.playRecording = async function (id) {
    var els = C.els;
    var r = C.recordings[id];
    if (!r) return;
    C.show(els.playback, true);
    els.playbackRef.textContent = (r.incident_ref || '') + (r.started_at ? ' – ' + C.fmtDate(r.started_at) : '');
    els.playback.setAttribute('data-session-id', id);
    els.playbackPosition.textContent = '–';
    ['data-lat', 'data-lon', 'data-index'].forEach(function (a) { els.playbackPosition.removeAttribute(a); });
    C.clear(els.playbackParts);
    C.clearTimeline();
    var v = els.playbackVideo;
    try { v.pause(); v.removeAttribute('src'); v.load(); } catch (e) {}
    playback = { id: id, fixes: [], parts: [], part: null, marker: null, whole: true };

    if (!C.playbackMap) C.playbackMap = C.makeMap(els.playbackMap);
    var pm = C.playbackMap;
    if (pm) {
      setTimeout(function () { pm.map.invalidateSize(); }, 50);
      if (playbackLayer) { pm.map.removeLayer(playbackLayer); playbackLayer = null; }
    }
    els.playbackTrailStatus.textContent = 'Loading the timeline…';
    var timeline;
    try {
      timeline = await C.api('GET', r.timeline_url);
    } catch (e) {
      els.playbackTrailStatus.textContent = 'Could not load the timeline' + (e && e.message ? ': ' + e.message : '.');
      return;
    }
    if (!playback || playback.id !== id) return;
    var urls = Array.isArray(r.parts) ? r.parts : [];
    playback.parts = (timeline.parts || []).map(function (p, i) {
      return { url: urls[i] && urls[i].url, offset_s: p.offset_s };
    }).filter(function (p) { return p.url; });
    playback.fixes = (timeline.fixes || []).filter(C.validFix);
    C.showTimeline(timeline, C.seekPlayback);
    if (timeline.working_copy) {
      C.show(v, true);
      v.onerror = function () { partsOneByOne(id); };
      start(v, timeline.working_copy.url, 0);
    } else {
      C.show(v, false);
      els.playbackParts.appendChild(C.mk('p', 'muted', 'No video was recorded for this session.'));
    }
    var n = playback.fixes.length;
    els.playbackTrailStatus.textContent = n ? n + ' location fixes' : 'No location was recorded.';
    drawTrail(playback.fixes);
    C.syncPlaybackMarker();
  };
})();
