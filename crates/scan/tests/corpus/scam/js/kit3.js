window['on' + 'before' + 'unload'] = () => 'stay';
var s = document.getElementById('snd');
setInterval(function () { s.play(); }, 3000);
