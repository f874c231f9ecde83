/* Single sign-on: a "Sign in with <provider>" button on the sign-in card when the server offers it. */
(function () {
  'use strict';

  async function offer() {
    var box = document.getElementById('sso-box');
    var link = document.getElementById('sso-login');
    if (!box || !link) return;
    try {
      var res = await fetch('/api/oidc/config', { credentials: 'same-origin', cache: 'no-store' });
      var sso = res.ok ? await res.json() : null;
      if (!sso || !sso.enabled) return;
      link.textContent = 'Sign in with ' + (sso.provider || 'single sign-on');
      box.removeAttribute('hidden');
    } catch (e) { /* password sign-in still works */ }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', offer);
  else offer();
})();
