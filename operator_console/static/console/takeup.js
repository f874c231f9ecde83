/* SceneLink console: the Take-up card (supervisors, admins). For a date range, the figures of
   GET /api/reports/takeup: links sent, opened, agreed, video, location only, declined, failed
   (with the reasons), seconds from SMS to first frame; every session, then by browser and OS;
   and the same as a CSV download. No personal data; each request is recorded, so nothing here
   runs on a timer. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var els = null;
  var COLUMNS = ['sessions', 'links_sent', 'opened', 'agreed', 'video', 'location_only', 'declined', 'failed'];

  function query() {
    return C.dateRangeQuery(els.form.elements).join('&');
  }

  function seconds(value) { return value === null || value === undefined ? '' : value.toFixed(1) + ' s'; }

  function reasons(map) {
    return Object.keys(map || {}).map(function (k) { return k + ': ' + map[k]; }).join('; ');
  }

  function render(rows) {
    C.clear(els.rows);
    rows.forEach(function (r, i) {
      var tr = C.mk('tr', i === 0 ? 'total' : '');
      tr.appendChild(C.mk('td', '', i === 0 ? 'All sessions' : r.browser + ' on ' + r.os));
      COLUMNS.forEach(function (name) { tr.appendChild(C.mk('td', 'num', String(r[name]))); });
      tr.appendChild(C.mk('td', 'num', seconds(r.first_frame_p50_s)));
      tr.appendChild(C.mk('td', 'num', seconds(r.first_frame_p95_s)));
      tr.appendChild(C.mk('td', 'detail', reasons(r.failure_reasons)));
      els.rows.appendChild(tr);
    });
    C.show(els.table, rows.length > 0 && rows[0].sessions > 0);
  }

  async function show(ev) {
    if (ev) ev.preventDefault();
    var button = els.form.querySelector('button[type=submit]');
    var q = query();
    els.error.textContent = '';
    button.disabled = true;
    try {
      var data = await C.api('GET', '/api/reports/takeup' + (q ? '?' + q : ''));
      var rows = data.rows || [];
      render(rows);
      els.summary.textContent = rows.length && rows[0].sessions ? rows[0].sessions + ' sessions in the evidence store.' : 'No sessions in this range.';
      els.csv.href = '/api/reports/takeup?' + (q ? q + '&' : '') + 'format=csv';
      C.show(els.csv, true);
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
    C.show(els.csv, false);
    els.error.textContent = '';
  }

  function init() {
    var $ = function (id) { return document.getElementById(id); };
    els = {
      form: $('takeup-form'), error: $('takeup-error'), summary: $('takeup-summary'),
      table: $('takeup-table'), rows: $('takeup-rows'), csv: $('takeup-csv')
    };
    if (!els.form) return;
    els.form.addEventListener('submit', show);
    new MutationObserver(reset).observe(document.body, { attributes: true, attributeFilter: ['data-auth'] });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
