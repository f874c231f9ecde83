/* SceneLink console: a "Sign in with <provider>" button on the sign-in card when the server
   offers single sign-on. */
(function () {
  'use strict';

  async function offer() {
    var box = document.getElementById('sso-box');
    var link = document.getElementById('sso-login');
    if (!box || !link) return;
    try {
      var sso = await window.SceneLink.console.api('GET', '/api/oidc/config');
      if (!sso || !sso.enabled) return;
      link.textContent = 'Sign in with ' + (sso.provider || 'single sign-on');
      box.removeAttribute('hidden');
    } catch (e) { /* password sign-in still works */ }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', offer);
  else offer();
})();
