/* SceneLink console: the Retention card (MoPI review queue, links, holds). CSP-safe, no framework.
   Shown to roles that may read the queue; the server's permission table is the authority. */
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var api = window.SceneLink.console.api;
  var errorText = window.SceneLink.errorText;

  function mk(tag, text) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function day(iso) { return iso ? iso.slice(0, 10) : 'kept (hold or awaited event)'; }

  function fillOptions(select, values) {
    while (select.firstChild) select.removeChild(select.firstChild);
    values.forEach(function (v) {
      var o = mk('option', v.title ? v.name + ': ' + v.title : v.name);
      o.value = v.name;
      select.appendChild(o);
    });
  }

  function pick(sessionId) {
    ['ret-link-session', 'ret-hold-session', 'ret-release-session'].forEach(function (id) { $(id).value = sessionId; });
  }

  function render(data) {
    var list = $('ret-queue');
    while (list.firstChild) list.removeChild(list.firstChild);
    $('ret-empty').hidden = data.items.length > 0;
    data.items.forEach(function (item) {
      var li = mk('li');
      var btn = mk('button', item.session_id);
      btn.type = 'button';
      btn.className = 'btn btn-small btn-ghost';
      btn.addEventListener('click', function () { pick(item.session_id); });
      li.appendChild(btn);
      var holds = item.holds.map(function (h) { return h.kind + ' ' + h.hold_id; }).join(', ') || 'none';
      li.appendChild(mk('span', ' ' + item.why + ' (' + day(item.due) + '): class ' + item.classes.join(', ') +
        ', disposal ' + day(item.disposal_at) + ', holds ' + holds + ', rule ' + item.rule));
      list.appendChild(li);
    });
    fillOptions($('ret-link-class'), data.classes);
    fillOptions($('ret-hold-kind'), data.hold_kinds.map(function (k) { return { name: k }; }));
  }

  async function refresh() {
    try { render(await api('GET', '/api/retention/queue')); say(''); } catch (e) { say(errorText(e)); }
  }

  function say(text, ok) {
    var el = $('ret-message');
    el.textContent = text;
    el.className = ok ? 'success' : 'field-error';
    el.hidden = !text;
  }

  function summary(state) {
    return state.session_id + ': class ' + state.classes.join(', ') + ', disposal ' + day(state.disposal_at) +
      ', holds ' + (state.holds.map(function (h) { return h.kind + ' ' + h.hold_id; }).join(', ') || 'none');
  }

  function onSubmit(formId, build) {
    $(formId).addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var f = ev.target;
      try {
        var req = build(f);
        var result = await api('POST', req.path, req.body);
        say('Recorded. ' + summary(result.state) + (result.hold_id ? ' (new hold ' + result.hold_id + ')' : ''), true);
        f.elements.reason.value = '';
        refresh();
      } catch (e) { say(errorText(e)); }
    });
  }

  function base(f, field) { return '/api/retention/' + encodeURIComponent(f.elements[field].value.trim()); }

  function start() {
    onSubmit('ret-link-form', function (f) {
      var events = {};
      if (f.elements.event.value.trim() && f.elements.event_date.value) events[f.elements.event.value.trim()] = f.elements.event_date.value;
      return { path: base(f, 'session') + '/links', body: {
        reference: f.elements.reference.value.trim(), class_name: f.elements.class_name.value,
        reason: f.elements.reason.value.trim(), events: events, removed: f.elements.removed.checked } };
    });
    onSubmit('ret-hold-form', function (f) {
      return { path: base(f, 'session') + '/holds', body: { kind: f.elements.kind.value, reason: f.elements.reason.value.trim() } };
    });
    onSubmit('ret-release-form', function (f) {
      return { path: base(f, 'session') + '/holds/' + encodeURIComponent(f.elements.hold_id.value.trim()) + '/release',
        body: { reason: f.elements.reason.value.trim() } };
    });
    $('ret-refresh').addEventListener('click', refresh);
    new MutationObserver(onAuth).observe(document.body, { attributes: true, attributeFilter: ['data-auth'] });
    onAuth();
  }

  function onAuth() {
    var card = $('retention');
    if (document.body.getAttribute('data-auth') !== 'in') { card.hidden = true; return; }
    card.hidden = !window.SceneLink.console.may('GET /api/retention/queue');
    if (!card.hidden) refresh();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
