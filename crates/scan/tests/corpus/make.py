#!/usr/bin/env python3
"""Writes the scanner's labelled corpus: scam/ (browser lockers) and legit/ (hard negatives).

The pages are committed; this script is how they were composed from hand-written fragments
(scare texts in six languages, locking behaviours plain and obfuscated, honest pages of many
trades), so that more can be added the same way. Run it from this folder; it overwrites
scam/*.html and legit/*.html. Deterministic (fixed seed).
"""
import os, random

R = random.Random(6)

# ---------------------------------------------------------------- scare texts, per language
SCARE = {
    "en": dict(
        title=["{brand} Security Alert", "Windows Defender - Security Warning", "Critical Alert from {brand}", "Apple Security Center"],
        claim=["Your computer has been blocked due to suspicious activity.", "Access to this computer has been blocked for security reasons.",
               "Your PC is infected with Trojan Spyware and your data is at risk.", "Your iPhone has been hacked! Your personal data may be stolen."],
        dont=["Do not close this window or restart your computer.", "Please do not shut down or restart your PC.", "DO NOT IGNORE THIS WARNING. Do not close this page."],
        call=["Call {brand} Support immediately: {phone}", "Contact support now at {phone} (toll free)", "Call technical support: {phone}"],
        err=["Error # DW6VB36", "Error code: 0x80073afc", "Windows Error 0x8024402C", "Error # 268D3-XC00037"],
    ),
    "es": dict(
        title=["Alerta de seguridad de {brand}", "Advertencia de seguridad de Windows"],
        claim=["Su computadora ha sido bloqueada por actividad sospechosa.", "Su equipo está infectado con virus y sus datos están en riesgo.",
               "Virus detectado: su ordenador ha sido bloqueado."],
        dont=["No cierre esta ventana ni reinicie su computadora.", "No apague ni reinicie su equipo."],
        call=["Llame al soporte técnico de {brand}: {phone}", "Llame ahora al {phone} (gratuito)"],
        err=["Código de error: 0x80070424", "Error # ES7X2KD"],
    ),
    "fr": dict(
        title=["Alerte de sécurité {brand}", "Avertissement de sécurité Windows"],
        claim=["Votre ordinateur a été bloqué en raison d'une activité suspecte.", "Votre PC est infecté par un logiciel espion. Vos données sont en danger.",
               "Virus détecté ! L'accès à cet ordinateur a été bloqué."],
        dont=["Ne fermez pas cette page et ne redémarrez pas votre ordinateur.", "N'éteignez pas votre PC."],
        call=["Appelez le support technique {brand} : {phone}", "Appelez immédiatement le {phone} (appel gratuit)"],
        err=["Code d'erreur : 0x80072EE7", "Erreur # FR0XB44"],
    ),
    "de": dict(
        title=["{brand} Sicherheitswarnung", "Windows-Sicherheitswarnung"],
        claim=["Ihr Computer wurde aufgrund verdächtiger Aktivitäten gesperrt.", "Ihr PC ist mit einem Trojaner infiziert. Ihre Daten sind gefährdet.",
               "Virus erkannt! Dieser Computer wurde blockiert."],
        dont=["Schließen Sie diese Seite nicht und starten Sie Ihren Computer nicht neu.", "Bitte nicht neu starten oder ausschalten."],
        call=["Rufen Sie den technischen Support von {brand} an: {phone}", "Rufen Sie sofort an: {phone} (gebührenfrei)"],
        err=["Fehlercode: 0x80070005", "Fehler # DE9K2LQ"],
    ),
    "pt": dict(
        title=["Alerta de segurança da {brand}"],
        claim=["O seu computador foi bloqueado. Vírus detectado!", "Seu dispositivo está infectado e em risco."],
        dont=["Não feche esta página e não reinicie o computador."],
        call=["Ligue para o suporte técnico da {brand}: {phone}"],
        err=["Código de erro: 0x8007045D"],
    ),
    "it": dict(
        title=["Avviso di sicurezza {brand}"],
        claim=["Il tuo computer è stato bloccato per attività sospette.", "Il tuo PC è infetto: i tuoi dati sono a rischio."],
        dont=["Non chiudere questa pagina e non riavviare il computer."],
        call=["Chiama l'assistenza tecnica {brand}: {phone}"],
        err=["Codice errore: 0x80040154"],
    ),
}
BRANDS = ["Microsoft", "Windows", "Apple", "Microsoft Windows", "Google Chrome", "Norton", "McAfee", "Windows Defender", "Amazon"]
PHONES = {
    "en": ["+1-888-555-0142", "1 (844) 555-0199", "+1 877 555 0123", "(855) 555-0178", "+44 800 555 0147", "1-866-555-0110"],
    "es": ["+34 900 555 123", "+52 800 555 0144", "900 555 321"],
    "fr": ["09 70 55 50 12", "+33 1 55 50 12 34", "0 805 55 50 99"],
    "de": ["0800 555 0123", "+49 800 5550199", "+43 800 555 012"],
    "pt": ["+351 800 555 012", "+55 800 555 0123"],
    "it": ["+39 800 555 012", "800 555 0199"],
}

SCARE.update({
    "ja": dict(
        title=["{brand} セキュリティ警告", "Windows Defender - セキュリティ警告"],
        claim=["お使いのコンピューターはウイルスに感染しています。", "このPCへのアクセスはセキュリティ上の理由でブロックされました。",
               "ウイルスが検出されました。個人情報が盗まれる危険があります。"],
        dont=["このページを閉じないでください。コンピューターを再起動しないでください。", "この画面を閉じたり、再起動したりしないでください。"],
        call=["今すぐ{brand}サポートに電話してください: {phone}", "サポート窓口に電話: {phone}（通話無料）"],
        err=["エラーコード: 0x80070424", "Error # JP3K9X2"],
    ),
    "zh": dict(
        title=["{brand} 安全警报", "Windows 安全警告"],
        claim=["您的电脑已被锁定，检测到病毒。", "检测到病毒：您的个人数据面临风险。"],
        dont=["请勿关闭此页面，也不要重启电脑。", "请勿关闭或重启您的计算机。"],
        call=["请立即拨打{brand}技术支持电话: {phone}", "立即拨打免费热线 {phone}"],
        err=["错误代码: 0x80072EE7", "Error # ZH7Q2M1"],
    ),
    "ko": dict(
        title=["{brand} 보안 경고", "Windows 보안 경고"],
        claim=["귀하의 컴퓨터가 바이러스에 감염되었습니다.", "보안상의 이유로 이 컴퓨터가 차단되었습니다."],
        dont=["이 창을 닫지 마십시오. 컴퓨터를 재부팅하지 마십시오.", "페이지를 닫거나 컴퓨터를 끄지 마십시오."],
        call=["지금 {brand} 지원센터에 전화하십시오: {phone}", "기술 지원 무료 전화: {phone}"],
        err=["오류 코드: 0x8024402C", "Error # KR5T1W8"],
    ),
})
PHONES.update({
    "ja": ["0120-555-012", "050-5555-0199", "+81 3 5555 0123"],
    "zh": ["400-555-0123", "+86 10 5555 0199"],
    "ko": ["080-555-0123", "+82 2 555 0199"],
})

# ---------------------------------------------------------------- locking behaviours
# Each: (name, variants); a variant is (kind, payload) where kind is js (inline script),
# ext (external script), attr (body attributes), css (style sheet), html (markup).
B = {
    "fullscreen_load": [
        ("js", "document.documentElement.requestFullscreen();"),
        ("js", "var d = document['document' + 'Element'];\nd['req' + 'uestFull' + 'screen']();"),
        ("js", "var el = document.documentElement;\n(el.requestFullscreen || el.webkitRequestFullscreen || el.mozRequestFullScreen).call(el);"),
        ("js", "window.addEventListener('load', function () {\n  document.body[\"\\x72equestFullscreen\"]();\n});"),
    ],
    "fullscreen_click": [
        ("js", "document.addEventListener('click', function () {\n  document.documentElement.requestFullscreen();\n});"),
        ("js", "function goFull() {\n  var e = document.documentElement;\n  if (e.webkitRequestFullscreen) e.webkitRequestFullscreen(); else e.requestFullscreen();\n}\ndocument.body.onclick = goFull;"),
        ("attr", "onclick=\"document.documentElement.requestFullscreen()\""),
        ("js", "var k = ['request', 'Full', 'screen'].join('');\n$(document).on('mousedown', function () { document.body[k](); });"),
        ("js", "document.onkeydown = function () { document.documentElement[String.fromCharCode(114,101,113,117,101,115,116,70,117,108,108,115,99,114,101,101,110)](); };"),
    ],
    "fullscreen_reenter": [
        ("js", "document.addEventListener('fullscreenchange', function () {\n  if (!document.fullscreenElement) document.documentElement.requestFullscreen();\n});\ndocument.addEventListener('click', function () { document.documentElement.requestFullscreen(); });"),
    ],
    "keyboard_lock": [
        ("js", "document.addEventListener('click', function () {\n  document.documentElement.requestFullscreen();\n  navigator.keyboard.lock();\n});"),
        ("js", "navigator['keyboard']['lo' + 'ck'](['Escape', 'F11', 'MetaLeft']);"),
    ],
    "pointer_lock": [
        ("js", "document.body.addEventListener('click', function () { document.body.requestPointerLock(); });"),
        ("js", "window.onload = function () { var b = document.body; b['requestPointer' + 'Lock'](); };"),
    ],
    "beforeunload": [
        ("js", "window.onbeforeunload = function () {\n  return 'Your computer is not protected. Are you sure you want to leave?';\n};"),
        ("js", "window.addEventListener('beforeunload', function (e) {\n  e.preventDefault();\n  e.returnValue = '';\n});"),
        ("js", "window['on' + 'before' + 'unload'] = () => 'stay';"),
        ("attr", "onbeforeunload=\"return 'Do not leave'\""),
    ],
    "history_flood": [
        ("js", "for (var i = 0; i < 100; i++) {\n  history.pushState({}, '', location.href);\n}"),
        ("js", "window.onpopstate = function () {\n  history.pushState(null, document.title, location.href);\n};\nhistory.pushState(null, document.title, location.href);"),
        ("js", "setInterval(function () { history['push' + 'State']({}, '', '#' + Math.random()); }, 30);"),
    ],
    "dialog_loop": [
        ("js", "while (true) {\n  alert('WARNING! Your computer is infected. Call support now.');\n}"),
        ("js", "setInterval(function () { alert(msg); }, 1500);\nvar msg = 'Security warning';"),
        ("js", "function nag() {\n  if (!confirm('Your system is damaged. Call support?')) nag();\n}\nnag();"),
        ("js", "var w = window;\n(function loop() { w['al' + 'ert'](\"\\u0056irus!\"); setTimeout(loop, 10); })();"),
        ("js", "eval(unescape('%61%6c%65%72%74%28%31%29'));\nalert('Error'); alert('Error'); alert('Error');"),
    ],
    "window_open_loop": [
        ("js", "for (var i = 0; i < 40; i++) window.open(location.href, '_blank');"),
        ("js", "setInterval(function () { window['op' + 'en']('/alert.html'); }, 200);"),
    ],
    "print_loop": [
        ("js", "setInterval(function () { window.print(); }, 1000);"),
        ("js", "for (;;) { print(); }"),
    ],
    "download_loop": [
        ("js", "setInterval(function () {\n  var a = document.createElement('a');\n  a.href = 'data:text/plain,VIRUS%20REPORT';\n  a.download = 'virus_report.txt';\n  document.body.appendChild(a);\n  a.click();\n}, 500);"),
        ("js", "for (var n = 0; n < 30; n++) { var l = document.createElement('a'); l.setAttribute('download', 'scan' + n + '.log'); l.href = '#'; l.click(); }"),
    ],
    "escape_block": [
        ("js", "document.addEventListener('keydown', function (e) {\n  if (e.key === 'Escape' || e.keyCode === 122) { e.preventDefault(); }\n});"),
        ("js", "document.onkeydown = function () { return false; };"),
        ("js", "window.addEventListener('keyup', function (e) {\n  switch (e.keyCode) { case 27: case 122: case 123: e.preventDefault(); e.stopPropagation(); }\n});"),
        ("attr", "onkeydown=\"return false\""),
    ],
    "cursor_hidden": [
        ("css", "body { cursor: none; }"),
        ("js", "document.body.style.cursor = 'none';"),
        ("js", "document.body.style['cur' + 'sor'] = 'no' + 'ne';"),
        ("css", "html, body { margin: 0; cursor : none }"),
    ],
    "audio_loop": [
        ("html", "<audio autoplay loop src=\"alarm.mp3\"></audio>"),
        ("js", "var snd = new Audio('beep.mp3');\nsnd.loop = true;\nsnd.play();"),
        ("js", "var s = document.getElementById('snd');\nsetInterval(function () { s.play(); }, 3000);"),
        ("html", "<bgsound src=\"alert.wav\" loop=\"infinite\">"),
    ],
    "debugger_loop": [
        ("js", "setInterval(function () { debugger; }, 100);"),
        ("js", "(function f() { debugger; setTimeout(f, 50); })();"),
        ("js", "setInterval(function () { (function () {}).constructor('debu' + 'gger')(); }, 200);"),
    ],
    "console_tamper": [
        ("js", "console.log = function () {};\nconsole.warn = console.log;"),
        ("js", "setInterval(function () { console.clear(); }, 100);"),
    ],
    "context_menu": [
        ("js", "document.oncontextmenu = function () { return false; };"),
        ("attr", "oncontextmenu=\"return false\""),
        ("js", "document.addEventListener('contextmenu', e => e.preventDefault());"),
    ],
    "devtools_keys": [
        ("js", "document.onkeydown = function (e) {\n  if (e.keyCode == 123) return false;\n  if (e.ctrlKey && e.shiftKey && e.keyCode == 73) return false;\n};"),
    ],
}

LOCKS = ["fullscreen_load", "fullscreen_click", "fullscreen_reenter", "keyboard_lock", "pointer_lock", "beforeunload", "history_flood",
         "dialog_loop", "window_open_loop", "print_loop", "download_loop", "escape_block", "cursor_hidden"]
PRESSURE = ["audio_loop", "debugger_loop", "console_tamper"]


def scam_page(lang, behaviours, variant_pick, layout, number_from_query=False, external=None):
    t = SCARE[lang]
    brand = R.choice(BRANDS)
    phone = R.choice(PHONES[lang])
    pick = lambda xs: R.choice(xs).format(brand=brand, phone=phone)
    css, scripts, attrs, html = ["body{font-family:Segoe UI,Arial;background:#0078d7;color:#fff;text-align:center}"], [], [], []
    for b in behaviours:
        variants = B[b]
        kind, payload = variants[variant_pick % len(variants)]
        {"js": scripts, "attr": attrs, "css": css, "html": html}[kind].append(payload)
    shown = "<span class=\"ph\"></span>" if number_from_query else phone
    if number_from_query == "href":
        # read with a regex over the whole URL, written by other scripts
        shown = "<script>document.write(num)</script>"
        scripts.insert(0, "function param(name) {\n  var m = new RegExp('[?&]' + name + '=([^&#]*)').exec(window.location.href);\n  return m ? decodeURIComponent(m[1]) : '';\n}\nvar num = param('phone');")
    elif number_from_query:
        scripts.insert(0, R.choice([
            "var p = new URLSearchParams(location.search).get('phone');\ndocument.querySelectorAll('.ph').forEach(function (e) { e.textContent = p; });",
            "var q = new URLSearchParams(window.location.search);\nvar num = q.get('ph') || q.get('n');\nfor (var e of document.getElementsByClassName('ph')) e.innerHTML = num;",
        ]))
    call = t["call"][0].format(brand=brand, phone=shown) if number_from_query else pick(t["call"])
    parts = {
        "title": pick(t["title"]),
        "claim": pick(t["claim"]),
        "dont": pick(t["dont"]),
        "err": pick(t["err"]),
        "call": call,
        "big": f"<h1 style=\"font-size:40px\">{shown}</h1>",
    }
    if layout == 0:
        body = f"<div class=\"box\"><h2>{parts['title']}</h2><p>{parts['claim']}</p><p>{parts['err']}</p><p><b>{parts['dont']}</b></p><p>{parts['call']}</p>{parts['big']}</div>"
    elif layout == 1:
        body = f"<header><img src=\"logo.png\" alt=\"\"> {parts['title']}</header><main><p class=\"alert\">{parts['claim']} {parts['dont']}</p><div class=\"num\"><font size=\"6\">{shown}</font></div><p>{parts['call']}</p><small>{parts['err']}</small></main>"
    else:
        body = f"<table width=100%><tr><td><marquee>{parts['title']}</marquee></td></tr><tr><td>{parts['claim']}<br>{parts['err']}<br>{parts['call']}<br>{parts['dont']}</td></tr></table><div id=\"overlay\" style=\"font-size:2em\">{shown}</div>"
    out = [f"<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{parts['title']}</title>\n<style>{' '.join(css)}</style>\n</head>",
           f"<body {' '.join(attrs)}>".replace("<body >", "<body>"), body, *html]
    if external:
        out.append(f"<script src=\"{external}\"></script>")
    else:
        for s in scripts:
            out.append(f"<script>\n{s}\n</script>")
    out.append("</body>\n</html>\n")
    return "\n".join(out), "\n".join(scripts)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# The languages of the first pages; later ones get their own section (cjk()), so that adding
# a language leaves the existing pages as they are.
FIRST_LANGS = ["en", "es", "fr", "de", "pt", "it"]


def scams():
    langs = FIRST_LANGS
    n = 0
    # each locking or pressuring behaviour alone, in several variants and languages
    for b in LOCKS + PRESSURE:
        for v in range(len(B[b])):
            lang = langs[(n + v) % len(langs)]
            page, _ = scam_page(lang, [b], v, (n + v) % 3)
            write(f"scam/{b}_{v + 1}_{lang}.html", page)
            n += 1
    # combinations, as real kits ship them
    combos = [
        ["fullscreen_click", "dialog_loop", "audio_loop"], ["fullscreen_load", "history_flood", "beforeunload"],
        ["escape_block", "cursor_hidden", "fullscreen_click", "context_menu"], ["keyboard_lock", "audio_loop", "debugger_loop"],
        ["dialog_loop", "window_open_loop"], ["print_loop", "history_flood"], ["fullscreen_reenter", "escape_block", "devtools_keys"],
        ["beforeunload", "context_menu", "devtools_keys", "audio_loop"], ["pointer_lock", "cursor_hidden"],
        ["download_loop", "dialog_loop", "console_tamper"], ["fullscreen_click", "keyboard_lock", "history_flood", "audio_loop", "debugger_loop"],
        ["history_flood", "context_menu"], ["fullscreen_load", "escape_block"], ["cursor_hidden", "audio_loop", "beforeunload"],
    ]
    for i, c in enumerate(combos):
        lang = langs[i % len(langs)]
        page, _ = scam_page(lang, c, i, i % 3, number_from_query=(i % 4 == 1))
        write(f"scam/combo_{i + 1}_{lang}.html", page)
    # kits that load their locker from an external script
    for i, c in enumerate([["fullscreen_click", "dialog_loop"], ["history_flood", "escape_block"], ["beforeunload", "audio_loop"], ["keyboard_lock", "cursor_hidden"]]):
        lang = langs[(i + 2) % len(langs)]
        c = [b for b in c if B[b][i % len(B[b])][0] == "js"] or c
        page, code = scam_page(lang, c, i, i % 3, external=f"js/kit{i + 1}.js")
        write(f"scam/external_{i + 1}_{lang}.html", page)
        write(f"scam/js/kit{i + 1}.js", code + "\n")


# ---------------------------------------------------------------- hard negatives
SHELL = "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"

TRADES = [
    ("en", "Rapid Rooter Plumbing", "24/7 emergency plumber. Burst pipes, blocked drains, water heaters.", "(312) 555-0187"),
    ("en", "Harbor Mutual Insurance", "Get a car insurance quote in 5 minutes. Home, auto and life cover.", "1-800-555-0163"),
    ("en", "Keller & Stone, Attorneys at Law", "Injured in an accident? Free consultation. No fee unless we win.", "+1 (646) 555-0134"),
    ("en", "BrightSmile Dental", "New patients welcome. Emergency appointments today.", "020 7946 0958"),
    ("en", "CoolBreeze HVAC", "Air conditioning repair and furnace installation. Same-day service.", "(480) 555-0112"),
    ("en", "SafeLock Locksmiths", "Locked out? We arrive in 30 minutes, day or night.", "0161 496 0753"),
    ("en", "Summit Roofing", "Storm damage? Free roof inspection and insurance claims help.", "1-877-555-0191"),
    ("en", "Move-It Movers", "Local and long-distance moving. Get your free estimate.", "(206) 555-0148"),
    ("es", "Fontanería Rápida Madrid", "Fontaneros urgentes 24 horas. Desatascos y reparaciones.", "+34 910 555 123"),
    ("es", "Seguros Alianza", "Calcule su seguro de coche en 2 minutos. Llame ahora y ahorre.", "900 555 432"),
    ("es", "Abogados García & Asociados", "Despacho de abogados: accidentes de tráfico, laboral, familia.", "+34 933 555 210"),
    ("fr", "Plomberie Dupont", "Dépannage plomberie 7j/7 à Paris. Fuite d'eau, débouchage.", "01 45 55 50 12"),
    ("fr", "Assurances Horizon", "Devis assurance habitation gratuit. Appelez nos conseillers.", "09 70 55 50 44"),
    ("fr", "Cabinet Martin Avocats", "Avocats en droit du travail et droit de la famille à Lyon.", "+33 4 55 50 12 99"),
    ("de", "Sanitär Müller GmbH", "Rohrreinigung und Notdienst rund um die Uhr in Berlin.", "030 5555 0123"),
    ("de", "Allgemeine Versicherung AG", "Kfz-Versicherung vergleichen und sparen. Rufen Sie uns an.", "0800 555 0147"),
    ("de", "Kanzlei Schneider Rechtsanwälte", "Fachanwälte für Arbeitsrecht und Verkehrsrecht.", "+49 89 5555 0190"),
    ("it", "Idraulico Roma Pronto", "Pronto intervento idraulico 24 ore su 24.", "+39 06 5555 0123"),
    ("pt", "Seguros Atlântico", "Simule o seu seguro automóvel online.", "+351 210 555 123"),
    ("en", "Evergreen Landscaping", "Lawn care, tree trimming and garden design.", "(503) 555-0139"),
]

TRADE_EXTRAS = [
    # a DNI-style tag that reads UTM parameters
    "<script>\nvar params = new URLSearchParams(location.search);\nvar src = params.get('utm_source') || 'direct';\ndocument.cookie = 'src=' + src + '; path=/';\n</script>",
    # click-to-call tracking
    "<script>\ndocument.querySelectorAll('a[href^=\"tel:\"]').forEach(function (a) {\n  a.addEventListener('click', function () { window.dataLayer = window.dataLayer || []; dataLayer.push({event: 'call_click'}); });\n});\n</script>",
    # an unsaved-form warning on a quote page
    "<script>\nvar dirty = false;\ndocument.querySelector('form').addEventListener('input', function () { dirty = true; });\nwindow.addEventListener('beforeunload', function (e) { if (dirty) { e.preventDefault(); e.returnValue = ''; } });\n</script>",
    # a muted background video
    "<video autoplay loop muted playsinline src=\"hero.mp4\"></video>",
    # a testimonials carousel
    "<script>\nvar i = 0, slides = document.querySelectorAll('.t');\nsetInterval(function () { slides[i].hidden = true; i = (i + 1) % slides.length; slides[i].hidden = false; }, 5000);\n</script>",
    # a chat widget loader
    "<script>\n(function (w, d) { var s = d.createElement('script'); s.async = true; s.src = 'https://chat.example.net/widget.js'; d.head.appendChild(s); })(window, document);\n</script>",
    # an exit-intent offer
    "<script>\ndocument.addEventListener('mouseleave', function (e) { if (e.clientY < 0) document.getElementById('offer').hidden = false; });\n</script>",
    # an analytics snippet with a console line
    "<script>\nwindow.dataLayer = window.dataLayer || [];\nfunction gtag(){dataLayer.push(arguments);}\ngtag('js', new Date());\nconsole.log('analytics ready');\n</script>",
]


def trade_page(i, lang, name, pitch, phone):
    extras = [TRADE_EXTRAS[i % len(TRADE_EXTRAS)], TRADE_EXTRAS[(i * 3 + 1) % len(TRADE_EXTRAS)]]
    body = f"""<header><a href="/"><img src="logo.svg" alt="{name}"></a><nav><a href="/services">Services</a> <a href="/about">About</a> <a href="/contact">Contact</a></nav>
<a class="call" href="tel:{phone.replace(' ', '')}" style="font-size:28px">{phone}</a></header>
<section class="hero"><h1>{name}</h1><p>{pitch}</p><h2 style="font-size:36px">{phone}</h2></section>
<form action="/quote" method="post"><input name="name" placeholder="Name"><input name="zip" placeholder="ZIP"><button>Get a quote</button></form>
<div id="offer" hidden>10% off your first visit</div>
<div class="t">Great service, fast and friendly.</div><div class="t" hidden>Fair price, would call again.</div>
<footer>© 2026 {name}. Call {phone}. <a href="/privacy">Privacy</a></footer>
{extras[0]}
{extras[1] if extras[1] != extras[0] else ''}"""
    return SHELL.format(lang=lang, title=name, css="body{font-family:sans-serif} .call{font-weight:bold}", body=body)


IT_SUPPORT = [
    ("en", "FixMyPC Computer Repair", "Virus removal, slow computer tune-ups and data recovery. Is your computer slow or showing pop-ups? Bring it in or call us; we can connect remotely.", "1-888-555-0155", "https://anydesk.com/en/downloads"),
    ("en", "Geeks on Site", "Onsite and remote IT support for homes and small businesses. Remote session? Download our TeamViewer QuickSupport.", "(617) 555-0124", "https://get.teamviewer.com/quicksupport"),
    ("en", "NorthStar Managed IT", "Managed IT services, help desk, cybersecurity and backups for small businesses. Call our helpline.", "+1 415 555 0170", "https://northstar.example/remote"),
    ("es", "Informática Sevilla", "Reparación de ordenadores, eliminación de virus y soporte técnico remoto. Llame al soporte técnico.", "+34 954 555 210", "https://anydesk.com/es"),
    ("fr", "Dépannage Informatique Lille", "Assistance technique à domicile et à distance. Suppression de virus, récupération de données. Appelez-nous.", "03 20 55 50 77", "https://www.teamviewer.com/fr/"),
    ("de", "PC-Hilfe Hamburg", "Computerreparatur, Virenentfernung und Fernwartung. Rufen Sie uns an, wir helfen sofort.", "040 5555 0188", "https://anydesk.com/de"),
    ("en", "Apple Repair Pros (independent)", "Independent Mac and iPhone repair. Not affiliated with Apple Inc. Screen, battery and logic board repairs.", "(323) 555-0166", "https://www.splashtop.com/sos"),
    ("en", "SecureDesk Help Desk Portal", "Customers: start a support session with your technician's code. Call the help desk to get a code.", "1-800-555-0133", "https://secure.logmeinrescue.com/customer/code.aspx"),
    ("it", "Assistenza PC Milano", "Assistenza tecnica informatica a domicilio e da remoto. Rimozione virus.", "+39 02 5555 0123", "https://www.supremocontrol.com/it/"),
    ("en", "Tech Help for Seniors", "Patient, friendly computer help for seniors. Learn to spot scams: Microsoft will never call you. Call us with any question.", "(727) 555-0102", "https://rustdesk.com/"),
]


def it_support_page(lang, name, pitch, phone, tool):
    body = f"""<header><h1>{name}</h1><a href="tel:{phone.replace(' ', '')}" style="font-size:32px">{phone}</a></header>
<p>{pitch}</p><ul><li>Virus and malware removal</li><li>Windows and macOS set-up</li><li>Printer and Wi-Fi problems</li></ul>
<p><a href="{tool}">Download the remote support tool</a></p><p style="font-size:1.6em">Call {phone}</p>
<script>
document.getElementById('year') && (document.getElementById('year').textContent = new Date().getFullYear());
</script>"""
    return SHELL.format(lang=lang, title=name, css="body{font-family:Arial}", body=body)


ANTIVIRUS = [
    ("en", "Norton 360 Deluxe", "Norton 360 protects your PC and Mac against viruses, ransomware, malware and other online threats. 24/7 support: call {phone}.", "1-844-555-0168"),
    ("en", "McAfee Total Protection", "Award-winning antivirus. Protect your devices from viruses and identity theft. Questions? Call sales at {phone}.", "1-866-555-0122"),
    ("en", "Avast Premium Security", "Stop viruses, spyware, ransomware and phishing. Call our sales team: {phone}.", "+1 844 555 0100"),
    ("es", "Antivirus Escudo Pro", "Proteja su computadora contra virus y malware. Soporte técnico: {phone}.", "+34 900 555 777"),
    ("fr", "Bouclier Antivirus", "Protégez votre ordinateur contre les virus, les logiciels espions et le vol d'identité. Service client : {phone}.", "09 70 55 50 88"),
    ("de", "Schutzschild Antivirus", "Schützen Sie Ihren PC vor Viren, Trojanern und Phishing. Kundendienst: {phone}.", "0800 555 0166"),
    ("en", "Windows Security (help page)", "Microsoft Defender Antivirus is built into Windows. If a scan finds a threat, Windows Security quarantines it. Do not call numbers shown in pop-ups.", "1-800-555-0120"),
    ("en", "Malware Removal Guide", "How to tell if your computer is infected: slow start-up, pop-ups, unknown programs. Run a full scan and remove threats. Need help? {phone}", "(888) 555-0109"),
]


def antivirus_page(i, lang, name, pitch, phone):
    pitch = pitch.format(phone=phone)
    extra = ["<video autoplay loop muted src=\"demo.mp4\"></video>",
             "<script>\nvar end = Date.now() + 3600e3;\nsetInterval(function () { var s = Math.max(0, end - Date.now()) / 1000 | 0; document.getElementById('cd').textContent = (s / 60 | 0) + ':' + ('0' + s % 60).slice(-2); }, 1000);\n</script>",
             "<script>\ndocument.querySelectorAll('.buy').forEach(function (b) { b.onclick = function () { location.href = '/checkout?plan=' + b.dataset.plan; }; });\n</script>"][i % 3]
    body = f"""<h1>{name}</h1><p>{pitch}</p><div class="price">$39.99 first year <span id="cd"></span></div>
<button class="buy" data-plan="deluxe">Buy now</button><div style="font-size:30px">Sales: {phone}</div>
<p>Real-time threat protection · Secure VPN · Password manager · 50 GB cloud backup</p>
{extra}"""
    return SHELL.format(lang=lang, title=name, css="body{font-family:Helvetica}", body=body)


NEWS = [
    ("en", "Tech support scams are back: what the fake Microsoft alert looks like",
     "Readers sent us screenshots of a pop-up that says \"Your computer has been blocked\" and \"Do not close this window or restart your computer\", with an error code such as \"Error # DW6VB36\" and a number to call, 1-888-555-0190. Microsoft says it never shows phone numbers in error messages. If you see such a page, close the browser with Task Manager; do not call."),
    ("en", "Police warn of browser lock scams targeting seniors",
     "The page plays a loud alarm and claims \"Windows Defender Security Alert: your PC is infected with spyware\". Victims who called the number were asked to install AnyDesk and pay for 'repairs'. Police ask anyone who sees a warning like \"Access to this computer has been blocked\" not to call."),
    ("es", "Alerta por estafas de soporte técnico falso",
     "Las páginas muestran mensajes como \"Su computadora ha sido bloqueada\" y \"No cierre esta ventana ni reinicie su computadora\", y piden llamar al soporte técnico de Microsoft. La policía recuerda que Microsoft nunca llama a sus clientes."),
    ("fr", "Arnaques au faux support technique : comment les reconnaître",
     "Le message affiche « Votre ordinateur a été bloqué » et « Ne fermez pas cette page », avec un code d'erreur 0x80072EE7 et un numéro à appeler. Ne rappelez jamais ce numéro : fermez le navigateur."),
    ("de", "Verbraucherzentrale warnt vor falschen Microsoft-Warnungen",
     "Auf dem Bildschirm steht \"Ihr Computer wurde gesperrt\" und \"Starten Sie Ihren Computer nicht neu\". Die angezeigte Nummer gehört Betrügern. Microsoft ruft niemals von sich aus an."),
    ("en", "How a fake virus warning cost a retiree $3,000",
     "\"Call Microsoft support immediately: +1-844-555-0137\", the screen read, above the words \"Your iPhone has been hacked\". The caller asked for gift cards. Experts say the number is rotated daily."),
    ("it", "Truffa del falso supporto tecnico: come difendersi",
     "Il messaggio dice \"Il tuo computer è stato bloccato\" e invita a chiamare l'assistenza tecnica. Non chiamate: chiudete il browser."),
    ("en", "Security researchers map tech support scam infrastructure",
     "The study crawled 20,000 pages that showed messages like \"Security Alert\" and \"Your computer is infected\", found that many used call tracking numbers, and lists the most common error codes such as 0x80073afc."),
]


def news_page(i, lang, title, text):
    extra = ["<script>\ndocument.addEventListener('scroll', function () { document.getElementById('bar').style.width = (scrollY / document.body.scrollHeight * 100) + '%'; });\n</script>",
             "<script>\n(function () { var s = document.createElement('script'); s.src = 'https://ads.example.net/ad.js'; s.async = true; document.head.appendChild(s); })();\n</script>",
             "<script>\ndocument.querySelector('.share').onclick = function () { window.open('https://social.example/share?u=' + encodeURIComponent(location.href), 'share', 'width=600,height=400'); };\n</script>"][i % 3]
    body = f"""<div id="bar"></div><header><a href="/">The Daily Ledger</a> · Technology</header>
<article><h1>{title}</h1><p class="byline">By Staff Reporter · 12 March 2026</p><p>{text}</p>
<figure><img src="screenshot.png" alt="Screenshot of the scam page"><figcaption>A screenshot of the scam page sent by a reader.</figcaption></figure>
<p>Anyone who has been scammed should contact their bank and report it to the police.</p><button class="share">Share</button></article>
{extra}"""
    return SHELL.format(lang=lang, title=title, css="body{font-family:Georgia}", body=body)


GAMES = [
    ("Space Blaster", "canvas.addEventListener('click', function () { canvas.requestPointerLock(); });\ndocument.getElementById('fs').addEventListener('click', function () { canvas.requestFullscreen(); });"),
    ("Tile Quest", "document.getElementById('full').onclick = function () {\n  if (document.fullscreenElement) document.exitFullscreen(); else document.documentElement.requestFullscreen();\n};"),
    ("Maze Runner 3D", "var play = document.getElementById('play');\nplay.addEventListener('click', async function () {\n  await document.documentElement.requestFullscreen();\n  await navigator.keyboard.lock(['KeyW', 'KeyA', 'KeyS', 'KeyD', 'Escape']);\n  canvas.requestPointerLock();\n});"),
    ("Snake", "document.addEventListener('keydown', function (e) {\n  if ([32, 37, 38, 39, 40].indexOf(e.keyCode) > -1) e.preventDefault();\n  turn(e.keyCode);\n});"),
    ("Racer", "function loop() {\n  update(); draw();\n  if (crashed) crash.play();\n  requestAnimationFrame(loop);\n}\nrequestAnimationFrame(loop);\nvar music = new Audio('theme.ogg');\nmusic.loop = true;\ndocument.getElementById('start').onclick = function () { music.play(); };"),
    ("Chess Online", "window.addEventListener('beforeunload', function (e) {\n  if (gameInProgress) { e.preventDefault(); e.returnValue = ''; }\n});\nboard.oncontextmenu = function () { return false; };"),
    ("Shooter Arena", "canvas.style.cursor = 'none';\ncanvas.onclick = function () { canvas.requestPointerLock(); };\ndocument.addEventListener('keydown', function (e) { if (e.key === 'Escape') { pause(); } });"),
    ("Puzzle Blocks", "var btn = document.querySelector('.fullscreen');\nbtn.addEventListener('click', function () {\n  var el = document.getElementById('game');\n  (el.requestFullscreen || el.webkitRequestFullscreen).call(el);\n});\ngame.addEventListener('contextmenu', function (e) { e.preventDefault(); });"),
]


def game_page(name, code):
    body = f"""<h1>{name}</h1><canvas id="game" width="800" height="600"></canvas>
<button id="play">Play</button> <button id="fs" class="fullscreen">Fullscreen</button> <button id="full">⛶</button> <button id="start">Start</button>
<p>Arrow keys to move, space to jump. High scores reset every Monday.</p>
<script>
var canvas = document.getElementById('game'), board = canvas, game = canvas, gameInProgress = true, crashed = false;
var crash = new Audio('crash.wav');
function update() {{}} function draw() {{}} function turn() {{}} function pause() {{}}
{code}
</script>"""
    return SHELL.format(lang="en", title=name, css="canvas{background:#000} #game{cursor:crosshair}", body=body)


VIEWERS = [
    ("RemoteOne Web Client", "1-800-555-0181", "connect.addEventListener('click', function () { rfb.connect(host.value); });\nfsBtn.addEventListener('click', function () { screen.requestFullscreen(); });\ndocument.addEventListener('fullscreenchange', function () {\n  if (document.fullscreenElement) navigator.keyboard.lock(); else navigator.keyboard.unlock();\n});\nscreen.addEventListener('keydown', function (e) { e.preventDefault(); rfb.sendKey(e.keyCode); });\nscreen.addEventListener('contextmenu', function (e) { e.preventDefault(); });"),
    ("VNC Viewer in the browser", None, "document.getElementById('fullscreen').onclick = function () { document.documentElement.requestFullscreen(); };\nscreen.onclick = function () { screen.requestPointerLock(); };\nscreen.onkeydown = function (e) { rfb.sendKey(e.key); return false; };"),
    ("Cloud Desktop Gateway", "+44 20 7946 0112", "var el = document.getElementById('display');\ndocument.getElementById('fs').addEventListener('click', function () {\n  el.requestFullscreen().then(function () { return navigator.keyboard.lock(); });\n});\nel.oncontextmenu = function () { return false; };"),
    ("Support Session Viewer", "1-877-555-0150", "join.onclick = function () { session.start(code.value); };\nexpand.onclick = function () { document.getElementById('view').requestFullscreen(); };\nview.addEventListener('keydown', function (e) { if (e.key === 'Escape' && e.shiftKey) return; e.preventDefault(); session.key(e); });"),
    ("Bastion Host Console", None, "document.getElementById('go').addEventListener('click', function () {\n  term.focus();\n  document.body.requestFullscreen();\n  navigator.keyboard.lock(['Escape', 'Tab']);\n});\nterm.addEventListener('keydown', function (e) { e.preventDefault(); ws.send(e.key); });"),
    ("Lab Workstation Access", "+49 30 5555 0177", "btn.addEventListener('click', () => canvas.requestFullscreen());\ncanvas.addEventListener('click', () => canvas.requestPointerLock());"),
]


def viewer_page(name, phone, code):
    help_ = f"<p>Need help connecting? Call our help desk: <b style=\"font-size:26px\">{phone}</b></p>" if phone else ""
    body = f"""<h1>{name}</h1><input id="host" placeholder="host:port"> <input id="code" placeholder="session code">
<button id="connect">Connect</button> <button id="join">Join</button> <button id="fsBtn">Fullscreen</button> <button id="expand">Expand</button> <button id="fs">Full screen</button> <button id="go">Open console</button> <button id="btn">Start</button>
<canvas id="screen"></canvas><div id="display"></div><div id="view" tabindex="0"></div><pre id="term" tabindex="0"></pre><canvas id="canvas"></canvas>
{help_}<p>Get the desktop app: <a href="https://anydesk.com/">AnyDesk</a> or <a href="https://www.teamviewer.com/">TeamViewer</a>.</p>
<script>
var rfb = {{connect: function () {{}}, sendKey: function () {{}}}}, session = {{start: function () {{}}, key: function () {{}}}}, ws = {{send: function () {{}}}};
var host = document.getElementById('host'), code = document.getElementById('code');
{code}
</script>"""
    return SHELL.format(lang="en", title=name, css="body{margin:0} #screen{cursor:none}", body=body)


PROTECTED = [
    ("en", "Lena Park Photography", "Wedding and portrait photographer in Austin. Book a session: (512) 555-0143.", "document.oncontextmenu = function () { return false; };\ndocument.onkeydown = function (e) {\n  if (e.keyCode == 123) return false;\n  if (e.ctrlKey && e.shiftKey && (e.keyCode == 73 || e.keyCode == 74)) return false;\n  if (e.ctrlKey && e.keyCode == 85) return false;\n};"),
    ("en", "Grandma's Recipe Box", "Family recipes since 1962. Questions? Call 1-800-555-0106.", "document.addEventListener('contextmenu', function (e) { e.preventDefault(); alert('Content is protected.'); });\ndocument.addEventListener('copy', function (e) { e.preventDefault(); });"),
    ("fr", "Atelier Lumière - Photographe", "Photographe de mariage à Bordeaux. Réservez au 05 55 50 12 34.", "$(document).on('contextmenu', function () { return false; });\n$(document).keydown(function (e) { if (e.which === 123) { return false; } });"),
    ("de", "Kunstgalerie Weiß", "Zeitgenössische Kunst in München. Telefon 089 5555 0145.", "document.body.oncontextmenu = () => false;\ndocument.addEventListener('dragstart', e => e.preventDefault());"),
    ("en", "Exam Portal - Online Proctored Test", "Your exam starts when you press Start. Technical problems? Call the exam help line 1-888-555-0117.", "document.getElementById('start').onclick = function () { document.documentElement.requestFullscreen(); begin(); };\ndocument.addEventListener('contextmenu', function (e) { e.preventDefault(); });\ndocument.addEventListener('copy', function (e) { e.preventDefault(); });\nwindow.addEventListener('beforeunload', function (e) { e.preventDefault(); e.returnValue = 'Your exam will be submitted.'; });\nfunction begin() {}"),
    ("es", "Estudio de Arte Morales", "Obras originales. Llame al +34 955 555 119 para visitas.", "document.oncontextmenu = function () { return false }\nsetInterval(function () { var t = Date.now(); debugger; if (Date.now() - t > 100) document.body.innerHTML = ''; }, 1000);"),
    ("en", "Premium Stock Footage", "Licensed 4K footage. Sales line (415) 555-0126.", "(function () {\n  var block = function (e) { if (e.key === 'F12' || (e.ctrlKey && e.shiftKey && e.key === 'I')) { e.preventDefault(); } };\n  window.addEventListener('keydown', block);\n  window.addEventListener('contextmenu', function (e) { e.preventDefault(); });\n})();"),
    ("en", "Sheet Music Store", "Printable sheet music. Call 1-866-555-0175 for orders.", "document.oncontextmenu = new Function('return false');\ndocument.onselectstart = function () { return false; };"),
]


def protected_page(lang, name, text, code):
    body = f"""<h1>{name}</h1><p>{text}</p><div class="gallery"><img src="1.jpg" alt=""><img src="2.jpg" alt=""><img src="3.jpg" alt=""></div>
<button id="start">Start</button>
<script>
{code}
</script>"""
    return SHELL.format(lang=lang, title=name, css="img{width:30%}", body=body)


OTHERS = [
    ("Kiosk slideshow", "en", "<h1>Museum Welcome Screen</h1><button id=\"go\">Start presentation</button>\n<script>\ndocument.getElementById('go').onclick = function () { document.documentElement.requestFullscreen(); next(); };\nfunction next() { setTimeout(next, 8000); }\n</script>"),
    ("Video landing page", "en", "<video autoplay loop muted playsinline src=\"bg.mp4\"></video><h1>Summer Sale</h1><p>Call 1-800-555-0177 to order.</p>"),
    ("Bank fraud awareness", "en", "<h1>Fraud awareness</h1><p>Scammers send messages claiming \"your account has been suspended\" or \"your computer is infected\". We will never ask you to install remote-access software. Call us on the number on your card: 0345 555 0199.</p>"),
    ("Podcast player", "en", "<h1>Episode 42</h1><audio controls src=\"ep42.mp3\"></audio><script>\ndocument.getElementById('p').onclick = function () { document.querySelector('audio').play(); };\n</script><button id=\"p\">Play</button>"),
    ("Cookie banner and consent", "de", "<h1>Willkommen</h1><p>Rufen Sie uns an: 030 5555 0101</p><div id=\"c\">Wir verwenden Cookies. <button id=\"ok\">OK</button></div><script>\ndocument.getElementById('ok').addEventListener('click', function () { document.getElementById('c').remove(); localStorage.setItem('consent', '1'); });\n</script>"),
    ("Single page app shell", "en", "<div id=\"app\"></div><script>\nvar routes = {'/': 'Home', '/pricing': 'Pricing'};\ndocument.addEventListener('click', function (e) { var a = e.target.closest('a'); if (a && routes[a.getAttribute('href')]) { e.preventDefault(); history.pushState({}, '', a.href); render(); } });\nwindow.addEventListener('popstate', render);\nfunction render() { document.getElementById('app').textContent = routes[location.pathname] || 'Not found'; }\nrender();\n</script><p>Sales: +1 (415) 555-0193</p>"),
    ("Minified bundle", "en", "<h1>Acme CRM</h1><p>Call sales: 1-888-555-0114</p><script>\n!function(e,t){\"object\"==typeof exports?module.exports=t():e.acme=t()}(this,function(){var e={};function t(n){if(e[n])return e[n].exports;var r=e[n]={exports:{}};return r.exports}return{init:function(o){for(var i=0;i<o.length;i++)t(o[i])}}});\n</script>"),
    ("Emergency alert system demo", "en", "<h1>Weather Alert Demo</h1><p>This is a test of the county alert page. Tornado warning sounds play only when you press Test.</p><button id=\"t\">Test</button><audio id=\"siren\" src=\"siren.mp3\"></audio><script>\ndocument.getElementById('t').onclick = function () { var s = document.getElementById('siren'); s.loop = false; s.play(); };\n</script>"),
    ("Form with validation alerts", "en", "<h1>Contact us</h1><form id=\"f\"><input id=\"email\"><button>Send</button></form><p>Or call (212) 555-0155</p><script>\ndocument.getElementById('f').onsubmit = function () { if (!document.getElementById('email').value) { alert('Please enter your email.'); return false; } };\n</script>"),
    ("Online presentation", "fr", "<h1>Présentation</h1><button id=\"b\">Plein écran</button><script>\ndocument.getElementById('b').addEventListener('click', function () { document.getElementById('slides').requestFullscreen(); });\ndocument.addEventListener('keydown', function (e) { if (e.key === 'ArrowRight') next(); });\nfunction next() {}\n</script><div id=\"slides\"></div><p>Contact : 01 55 50 12 34</p>"),
]


def legit():
    for i, t in enumerate(TRADES):
        write(f"legit/trade_{i + 1}_{t[0]}.html", trade_page(i, *t))
    for i, t in enumerate(IT_SUPPORT):
        write(f"legit/it_support_{i + 1}_{t[0]}.html", it_support_page(*t))
    for i, t in enumerate(ANTIVIRUS):
        write(f"legit/antivirus_{i + 1}_{t[0]}.html", antivirus_page(i, *t))
    for i, t in enumerate(NEWS):
        write(f"legit/news_{i + 1}_{t[0]}.html", news_page(i, *t))
    for i, t in enumerate(GAMES):
        write(f"legit/game_{i + 1}.html", game_page(*t))
    for i, t in enumerate(VIEWERS):
        write(f"legit/remote_viewer_{i + 1}.html", viewer_page(*t))
    for i, t in enumerate(PROTECTED):
        write(f"legit/no_right_click_{i + 1}_{t[0]}.html", protected_page(*t))
    for i, (name, lang, body) in enumerate(OTHERS):
        write(f"legit/other_{i + 1}_{lang}.html", SHELL.format(lang=lang, title=name, css="", body=body))


# ---------------------------------------------------------------- Japanese, Chinese, Korean
CJK_LEGIT = [
    ("ja", "パソコン修理のサポート工房", "ウイルス除去、データ復旧、パソコンの設定。遠隔サポートにも対応します。お気軽にお問い合わせください。", "03-5555-0142", "https://anydesk.com/ja"),
    ("zh", "北京电脑维修中心", "病毒清除、数据恢复、远程技术支持。欢迎来电咨询。", "010-5555-0188", "https://www.teamviewer.com/cn/"),
    ("ko", "서울 컴퓨터 수리", "바이러스 제거, 데이터 복구, 원격 지원. 언제든지 문의하세요.", "02-555-0166", "https://anydesk.com/ko"),
]
CJK_NEWS = [
    ("ja", "偽のウイルス警告に注意", "画面に「お使いのコンピューターはウイルスに感染しています」「このページを閉じないでください」と表示され、サポートに電話するよう求められます。表示された番号には絶対に電話しないでください。ブラウザーを閉じれば問題ありません。"),
    ("zh", "警惕假冒技术支持诈骗", "网页显示“您的电脑已被锁定，检测到病毒”和“请勿关闭此页面”，并要求拨打所谓的技术支持电话。警方提醒：不要拨打页面上的电话，关闭浏览器即可。"),
    ("ko", "가짜 기술 지원 사기 주의보", "화면에 \"귀하의 컴퓨터가 바이러스에 감염되었습니다\"와 \"이 창을 닫지 마십시오\"라는 문구가 뜨고 전화를 하라고 요구합니다. 표시된 번호로 전화하지 말고 브라우저를 닫으십시오."),
]


def cjk():
    langs = ["ja", "zh", "ko"]
    lockers = [["fullscreen_click", "dialog_loop"], ["escape_block", "cursor_hidden", "keyboard_lock"], ["beforeunload", "audio_loop"],
               ["history_flood", "context_menu", "devtools_keys"], ["fullscreen_load", "escape_block"], ["keyboard_lock", "audio_loop"]]
    for i, c in enumerate(lockers):
        lang = langs[i % len(langs)]
        page, _ = scam_page(lang, c, i, i % 3, number_from_query=("href" if i % 3 == 1 else False))
        write(f"scam/cjk_{i + 1}_{lang}.html", page)
    for i, t in enumerate(CJK_LEGIT):
        write(f"legit/it_support_cjk_{i + 1}_{t[0]}.html", it_support_page(*t))
    for i, t in enumerate(CJK_NEWS):
        write(f"legit/news_cjk_{i + 1}_{t[0]}.html", news_page(i, *t))


if __name__ == "__main__":
    scams()
    legit()
    cjk()
