/* SceneLink console: the playback timeline. One bar over the whole session (every part on the
   working copy's clock, GET /api/recordings/{id}/timeline) with the gaps shaded and markers for
   connection events, gaps, camera lost, chat, photos and snapshots; clicking the bar or a marker
   seeks. Beside it the chat and photos in order, those up to the moment shown highlighted. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var $ = function (id) { return document.getElementById(id); };
  var MOMENTS = { chat: true, photo: true, snapshot: true };
  var GAP_TITLES = { between_parts: 'No recording: the caller was reconnecting', no_media: 'No media from the caller' };
  var shown = null;  // { duration, cursor, moments: [{ offset, el }] }

  function pct(t, duration) {
    return Math.max(0, Math.min(100, (t / duration) * 100)) + '%';
  }

  function clock(t) {
    return (t < 0 ? '-' : '') + C.fmtDuration(Math.abs(Math.round(t)));
  }

  function span(cls, from, to, duration, title) {
    var el = C.mk('div', cls);
    el.style.left = pct(from, duration);
    el.style.width = pct(Math.max(to - from, 0), duration);
    el.title = title;
    return el;
  }

  C.clearTimeline = function () {
    shown = null;
    C.clear($('playback-timeline'));
    C.clear($('playback-moments'));
  };

  /* Draws ``timeline``; ``seek(t)`` moves the player to t seconds on the session's clock. */
  C.showTimeline = function (timeline, seek) {
    var bar = $('playback-timeline');
    var list = $('playback-moments');
    C.clearTimeline();
    var duration = Math.max(timeline.duration_s || 0, 0.001);
    shown = { duration: duration, cursor: C.mk('div', 'tl-cursor'), moments: [] };
    bar.setAttribute('data-duration', String(duration));
    (timeline.parts || []).forEach(function (p, i) {
      bar.appendChild(span('tl-part', p.offset_s, p.offset_s + p.duration_s, duration,
        'Part ' + (i + 1) + ': ' + clock(p.offset_s) + '–' + clock(p.offset_s + p.duration_s)));
    });
    (timeline.gaps || []).forEach(function (g) {
      var el = span('tl-gap', g.start_s, g.end_s, duration, (GAP_TITLES[g.cause] || 'Gap') + ' (' + C.fmtDuration(Math.round(g.end_s - g.start_s)) + ')');
      el.setAttribute('data-cause', g.cause);
      bar.appendChild(el);
    });
    (timeline.events || []).forEach(function (e) {
      var at = Math.max(0, Math.min(duration, e.offset_s));
      var b = C.mk('button', 'tl-marker tl-m-' + e.kind);
      b.type = 'button';
      b.style.left = pct(at, duration);
      b.title = clock(e.offset_s) + ' ' + e.label;
      b.setAttribute('aria-label', b.title);
      b.setAttribute('data-kind', e.kind);
      b.addEventListener('click', function (ev) { ev.stopPropagation(); seek(at); });
      bar.appendChild(b);
      if (!MOMENTS[e.kind]) return;
      var li = C.mk('li', 'moment moment-' + e.kind);
      var go = C.mk('button', 'btn btn-small btn-ghost', clock(e.offset_s));
      go.type = 'button';
      go.addEventListener('click', function () { seek(at); });
      li.appendChild(go);
      li.appendChild(C.mk('span', 'moment-text', e.label));
      if (e.name) {  // the photo or snapshot as kept in the bundle (opening it is audited)
        var a = C.mk('a', 'moment-file', e.name);
        a.href = '/api/recordings/' + encodeURIComponent(timeline.session_id) + '/files/' + encodeURIComponent(e.name);
        a.target = '_blank';
        a.rel = 'noopener';
        li.appendChild(a);
      }
      li.setAttribute('data-offset', String(e.offset_s));
      list.appendChild(li);
      shown.moments.push({ offset: e.offset_s, el: li });
    });
    if (!shown.moments.length) list.appendChild(C.mk('li', 'muted', 'No chat messages or photos in this session.'));
    bar.appendChild(shown.cursor);
    bar.onclick = function (ev) {
      var box = bar.getBoundingClientRect();
      if (box.width > 0) seek(((ev.clientX - box.left) / box.width) * duration);
    };
    C.timelineAt(0);
  };

  /* The player is at ``t`` seconds on the session's clock. */
  C.timelineAt = function (t) {
    if (!shown) return;
    shown.cursor.style.left = pct(t, shown.duration);
    $('playback-timeline').setAttribute('data-time', t.toFixed(2));
    shown.moments.forEach(function (m) { m.el.classList.toggle('moment-past', m.offset <= t); });
  };
})();
