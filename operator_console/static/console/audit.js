/* SceneLink console: the Audit card (supervisors). Searches the trail by session, person, action
   and dates (GET /api/audit; every search is itself recorded, so nothing here runs on a timer),
   shows whether the chain is intact or where it first breaks, and offers one session's extract
   (GET /api/audit/extract, JSON with the chain proof or CSV) as a download. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var els = null;

  function query() {
    var f = els.form.elements;
    var q = [];
    ['session_id', 'actor', 'action'].forEach(function (name) {
      var v = f[name].value.trim();
      if (v) q.push(name + '=' + encodeURIComponent(v));
    });
    return q.concat(C.dateRangeQuery(f)).join('&');
  }

  function showChain(data) {
    var intact = !!data.chain_intact;
    els.chain.textContent = intact ? 'Chain intact' :
      'Chain broken at record ' + (data.first_broken_seq === null ? '?' : data.first_broken_seq);
    els.chain.setAttribute('data-intact', intact ? 'true' : 'false');
  }

  function cell(tr, text, cls) { tr.appendChild(C.mk('td', cls, text === null || text === undefined ? '' : text)); }

  function render(records) {
    C.clear(els.rows);
    records.slice().reverse().forEach(function (r) {  // newest first
      var tr = C.mk('tr', /denied|refused|failed|throttled/.test(r.action) ? 'refused' : '');
      tr.setAttribute('data-seq', String(r.seq));
      cell(tr, r.seq);
      cell(tr, C.fmtDate(r.at));
      cell(tr, r.actor);
      cell(tr, r.action);
      var session = C.mk('td');
      if (r.session_id) {
        var pick = C.mk('button', 'btn btn-small btn-ghost', r.session_id);
        pick.type = 'button';
        pick.title = 'Search this session';
        pick.addEventListener('click', function () { els.form.elements.session_id.value = r.session_id; search(); });
        session.appendChild(pick);
      }
      tr.appendChild(session);
      cell(tr, r.remote);
      cell(tr, r.detail && Object.keys(r.detail).length ? JSON.stringify(r.detail) : '', 'detail');
      els.rows.appendChild(tr);
    });
    C.show(els.table, records.length > 0);
  }

  function offerExtract(sessionId) {
    C.show(els.extract, !!sessionId);
    if (!sessionId) return;
    var base = '/api/audit/extract?session_id=' + encodeURIComponent(sessionId);
    els.extractSession.textContent = sessionId;
    els.extractJson.href = base + '&format=json';
    els.extractCsv.href = base + '&format=csv';
  }

  async function search(ev) {
    if (ev) ev.preventDefault();
    var button = els.form.querySelector('button[type=submit]');
    els.error.textContent = '';
    button.disabled = true;
    try {
      var data = await C.api('GET', '/api/audit' + (query() ? '?' + query() : ''));
      showChain(data);
      render(data.records || []);
      els.summary.textContent = (data.records || []).length ? (data.records.length + ' records, newest first.') : 'No records match.';
      offerExtract(els.form.elements.session_id.value.trim() && (data.records || []).length ? els.form.elements.session_id.value.trim() : '');
    } catch (e) {
      els.error.textContent = window.SceneLink.errorText(e);
    } finally {
      button.disabled = false;
    }
  }

  function reset() {
    if (document.body.getAttribute('data-auth') === 'in') return;
    C.clear(els.rows);
    C.show(els.table, false);
    C.show(els.extract, false);
    els.chain.textContent = '';
    els.error.textContent = '';
  }

  function init() {
    var $ = function (id) { return document.getElementById(id); };
    els = {
      form: $('audit-search'), chain: $('audit-chain'), error: $('audit-error'), summary: $('audit-summary'),
      table: $('audit-table'), rows: $('audit-rows'), extract: $('audit-extract'),
      extractSession: $('audit-extract-session'), extractJson: $('audit-extract-json'), extractCsv: $('audit-extract-csv')
    };
    if (!els.form) return;
    els.form.addEventListener('submit', search);
    new MutationObserver(reset).observe(document.body, { attributes: true, attributeFilter: ['data-auth'] });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
