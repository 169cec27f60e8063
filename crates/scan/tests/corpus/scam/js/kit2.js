window.onpopstate = function () {
  history.pushState(null, document.title, location.href);
};
history.pushState(null, document.title, location.href);
document.onkeydown = function () { return false; };
