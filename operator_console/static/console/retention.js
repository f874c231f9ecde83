/* SceneLink console: the Retention card (MoPI review queue, holds, review decisions). A session is
   opened from its queue item or its recording row (C.openRetention), never by a typed id; its
   holds are released by picking them. The outcome of an action stays on screen until the next
   action or another session, whatever refreshes follow. Shown to roles that may read the queue;
   each form only where the server's permission table allows it (data-needs). */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var $ = function (id) { return document.getElementById(id); };
  var errorText = window.SceneLink.errorText;
  var current = null;         // the open session's id

  function day(iso) { return iso ? iso.slice(0, 10) : 'kept (hold or awaited event)'; }

  function fillOptions(select, values) {
    C.clear(select);
    values.forEach(function (v) {
      var o = C.mk('option', '', v.label);
      o.value = v.value;
      select.appendChild(o);
    });
  }

  function holdLabel(h) { return h.kind + ' (' + h.hold_id + ')' + (h.reason ? ': ' + h.reason : ''); }

  function render(data) {
    var list = $('ret-queue');
    C.clear(list);
    $('ret-empty').hidden = data.items.length > 0;
    data.items.forEach(function (item) {
      var li = C.mk('li', 'recording-row');
      li.setAttribute('data-session-id', item.session_id);
      var holds = item.holds.map(function (h) { return h.kind; }).join(', ') || 'none';
      li.appendChild(C.mk('span', 'row-main', item.why + ' (' + day(item.due) + '): class ' + item.classes.join(', ') +
        ', disposal ' + day(item.disposal_at) + ', holds ' + holds));
      var open = C.mk('button', 'btn btn-small', 'Open');
      open.type = 'button';
      open.addEventListener('click', function () { C.openRetention(item.session_id); });
      li.appendChild(open);
      list.appendChild(li);
    });
    fillOptions($('ret-link-class'), data.classes.map(function (c) { return { value: c.name, label: c.title ? c.name + ': ' + c.title : c.name }; }));
    fillOptions($('ret-hold-kind'), data.hold_kinds.map(function (k) { return { value: k, label: k }; }));
  }

  async function refreshQueue() {
    try { render(await C.api('GET', '/api/retention/queue')); } catch (e) { say(errorText(e)); }
  }

  // The outcome of the last action; cleared only by the next action or another session.
  function say(text, ok) {
    var el = $('ret-message');
    el.textContent = text;
    el.className = ok ? 'success' : 'field-error';
    el.hidden = !text;
  }

  function showState(state) {
    var holds = state.holds || [];
    $('ret-state').textContent = 'Class ' + (state.classes.join(', ') || 'none') + '; disposal ' + day(state.disposal_at) +
      (state.next_review ? '; next review ' + day(state.next_review) : '') + '; holds: ' +
      (holds.map(holdLabel).join('; ') || 'none') + '.';
    fillOptions($('ret-release-hold'), holds.map(function (h) { return { value: h.hold_id, label: holdLabel(h) }; }));
    C.show($('ret-release-form'), holds.length > 0);
  }

  /* Open a session's retention (from the queue or a recording row): its state and the actions. */
  C.openRetention = async function (sessionId) {
    var rec = C.recordings && C.recordings[sessionId];
    current = sessionId;
    say('');
    $('ret-session-id').textContent = '(' + sessionId + ')';
    $('ret-session-ref').textContent = rec && rec.incident_ref ? rec.incident_ref : 'session';
    $('ret-state').textContent = 'Loading…';
    C.show($('ret-session'), true);
    $('retention').scrollIntoView({ block: 'nearest' });
    try {
      var state = await C.api('GET', '/api/retention/' + encodeURIComponent(sessionId));
      if (current === sessionId) showState(state);
    } catch (e) {
      if (current === sessionId) $('ret-state').textContent = errorText(e);
    }
  };

  function onSubmit(formId, build, done) {
    $(formId).addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var f = ev.target;
      var id = current;
      if (!id) return;
      var button = f.querySelector('button[type=submit]');
      button.disabled = true;
      say('');
      try {
        var req = build(f, '/api/retention/' + encodeURIComponent(id));
        var result = await C.api('POST', req.path, req.body);
        say(done(result, f), true);
        f.elements.reason.value = '';
        if (current === id) showState(result.state);
        refreshQueue();
      } catch (e) {
        say(errorText(e));
      } finally {
        button.disabled = false;
      }
    });
  }

  function start() {
    onSubmit('ret-hold-form', function (f, base) {
      return { path: base + '/holds', body: { kind: f.elements.kind.value, reason: f.elements.reason.value.trim() } };
    }, function (result, f) {
      return 'Hold placed: ' + f.elements.kind.value + (result.hold_id ? ' (' + result.hold_id + ')' : '') + '. Disposal: ' + day(result.state.disposal_at) + '.';
    });
    onSubmit('ret-release-form', function (f, base) {
      return { path: base + '/holds/' + encodeURIComponent(f.elements.hold_id.value) + '/release',
        body: { reason: f.elements.reason.value.trim() } };
    }, function (result, f) {
      return 'Hold ' + f.elements.hold_id.value + ' released. Disposal: ' + day(result.state.disposal_at) + '.';
    });
    onSubmit('ret-link-form', function (f, base) {
      var events = {};
      if (f.elements.event.value.trim() && f.elements.event_date.value) events[f.elements.event.value.trim()] = f.elements.event_date.value;
      return { path: base + '/links', body: {
        reference: f.elements.reference.value.trim(), class_name: f.elements.class_name.value,
        reason: f.elements.reason.value.trim(), events: events, removed: f.elements.removed.checked } };
    }, function (result) {
      return 'Review recorded: class ' + result.state.classes.join(', ') + ', disposal ' + day(result.state.disposal_at) + '.';
    });
    $('ret-refresh').addEventListener('click', refreshQueue);
    new MutationObserver(onAuth).observe(document.body, { attributes: true, attributeFilter: ['data-auth'] });
    onAuth();
  }

  function onAuth() {
    var card = $('retention');
    current = null;
    say('');
    C.show($('ret-session'), false);
    card.hidden = !C.may('GET /api/retention/queue');
    if (!card.hidden) refreshQueue();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
