/* SceneLink console: the Accounts card (admins). Lists the operator accounts on request
   (GET /api/accounts, read-only and audited); accounts are managed with `scenelink users`. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var $ = function (id) { return document.getElementById(id); };

  async function load() {
    var rows = $('accounts-rows');
    $('accounts-error').textContent = '';
    try {
      var data = await C.api('GET', '/api/accounts');
      C.clear(rows);
      (data.accounts || []).forEach(function (a) {
        var tr = C.mk('tr');
        tr.appendChild(C.mk('td', '', a.username));
        tr.appendChild(C.mk('td', '', a.roles.join(', ')));
        tr.appendChild(C.mk('td', '', a.disabled ? 'disabled' : 'active'));
        tr.appendChild(C.mk('td', '', a.created_at ? C.fmtDate(a.created_at) : 'from configuration'));
        rows.appendChild(tr);
      });
      C.show($('accounts-table'), true);
    } catch (e) {
      $('accounts-error').textContent = window.SceneLink.errorText(e);
    }
  }

  function reset() {
    if (document.body.getAttribute('data-auth') === 'in') return;
    C.clear($('accounts-rows'));
    C.show($('accounts-table'), false);
  }

  function init() {
    if (!$('accounts-load')) return;
    $('accounts-load').addEventListener('click', load);
    new MutationObserver(reset).observe(document.body, { attributes: true, attributeFilter: ['data-auth'] });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
