#!/usr/bin/env bash
# The platform's main job: set up what is missing, bring the local platform up (nats-server and the
# director, supervised), deploy WordPress (a php service and its mysql database), wait until it
# answers and print the URL where a person finishes its install in a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cps() { node tools/cli/bin/cps.js "$@"; }
cps up "$@"
# the WordPress archive, from Debian's package (built once, again when the package changes)
bash examples/wordpress/build.sh
cps deploy examples/wordpress/manifest.json --if-missing
cps app info wordpress
cps service nodes web --app wordpress
site=$(cps service info web --app wordpress | sed -n 's/^url: //p')
if [ -z "$site" ]; then
  echo "up: the php service has no URL yet; see: cps service info web --app wordpress" >&2
  exit 1
fi
# the code reaches the nodes a few seconds after the service runs: wait for the install page
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${site}wp-admin/install.php" || true)
  [ "$code" = 200 ] && break
  sleep 0.5
done
if [ "$code" != 200 ]; then
  echo "up: WordPress does not answer yet (last status $code); see: cps service log web --app wordpress" >&2
  exit 1
fi
status=$(cps --json status)
url=$(printf '%s' "$status" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).directorUrl??""))')
cat <<MSG

WordPress runs. Open ${site} in a browser and finish its install (site title, your user).

Manage it in the dashboard: ${url}/ (sign in as admin, with the login printed above; the browser
warns about the director's certificate until it trusts the platform CA that \`cps up\` printed above).

(cps is node tools/cli/bin/cps.js)
  cps service info web --app wordpress            its URL, nodes and code version
  cps service add-nodes web --app wordpress --backend 2   two php-fpm backends behind the proxy
  cps php versions web --app wordpress            its code versions (cps php upload|enable to change)
  cps mysql connect db --app wordpress --exec     a client on its database
  cps events --app wordpress --follow             what happens, live (Ctrl-C ends it)
  cps deploy examples/wordpress-2/manifest.json   WordPress on two backends and a replicated database
  director: ${url}
MSG
