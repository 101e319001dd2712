#!/usr/bin/env bash
# check-cns against Debian's apache2 (mod_ssl) configured the way the public CNS/CIE mTLS
# template (italia/cie-cns-apache-docker) is: SSLVerifyClient optional, SSLVerifyDepth 5, the
# trusted CAs from a file, a courtesy page (403) when SSL_CLIENT_VERIFY is not SUCCESS, CRLs as
# local files (SSLCARevocationFile, read at start), no OCSP check of client certificates, no
# policy-OID or CN rules. Its expected deviations: fixtures/peers/apache2-cns.toml. Passes only
# if check-cns exits 0 with that peer file.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
peer="$root/fixtures/peers/apache2-cns.toml"
if [ ! -x /usr/sbin/apache2 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends apache2 >/dev/null
fi
apache2=/usr/sbin/apache2
mods=/usr/lib/apache2/modules
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
url="https://127.0.0.1:$port/cns/login"
dir="$WORK/apache2"
ca="$WORK/ca"
mkdir -p "$dir/www/cns"
# The workers run as nobody: they read the configuration, the pages and the credentials.
chmod 755 "$WORK"

# Our TEST CAs and CRLs (the same on every run); the service trusts the root only.
"$HARNESS" check-cns --url "$url" --ca-out "$ca" --ca-only >/dev/null
# The service's own server certificate, as an integrator would make one.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1/O=apache2 CNS peer TEST ONLY" \
  -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
chmod -R a+rX "$dir" "$ca"

printf '<!DOCTYPE html><title>CNS</title><h1>Accesso con CNS effettuato</h1>\n' >"$dir/www/cns/login"
printf '<!DOCTYPE html><title>CNS</title><h1>Accesso con CNS negato</h1><p>Carta non valida o assente.</p>\n' \
  >"$dir/www/cortesia.html"
cat >"$dir/httpd.conf" <<CONF
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so
LoadModule ssl_module $mods/mod_ssl.so
LoadModule rewrite_module $mods/mod_rewrite.so
LoadModule mime_module $mods/mod_mime.so
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LogLevel warn ssl:info
User nobody
Group nogroup
DefaultRuntimeDir $dir
DocumentRoot $dir/www
<Directory $dir/www>
  Require all granted
</Directory>
TypesConfig /etc/mime.types
AddType text/html .html
<Files "login">
  ForceType text/html
</Files>
SSLSessionCache shmcb:$dir/ssl_scache(512000)
<VirtualHost 127.0.0.1:$port>
  SSLEngine on
  SSLCertificateFile $dir/server.crt
  SSLCertificateKeyFile $dir/server.key
  SSLCACertificateFile $ca/root.pem
  SSLVerifyClient optional
  SSLVerifyDepth 5
  SSLCARevocationCheck leaf
  SSLCARevocationFile $ca/crl/all.crl.pem
  SSLOptions +StdEnvVars +ExportCertData
  ErrorDocument 403 /cortesia.html
  RewriteEngine on
  RewriteCond %{REQUEST_URI} !^/cortesia\.html$
  RewriteCond %{SSL:SSL_CLIENT_VERIFY} !^SUCCESS$
  RewriteRule ^ - [F]
</VirtualHost>
CONF
"$apache2" -f "$dir/httpd.conf" -DFOREGROUND >>"$dir/stdout.log" 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -ks -o /dev/null "https://127.0.0.1:$port/cortesia.html" && break
  sleep 0.1
done
echo "== $("$apache2" -v | head -n 1) with mod_ssl at $url"
"$HARNESS" check-cns --url "$url" --ca-out "$ca" --accept-marker "Accesso con CNS effettuato" \
  --peer "$peer" --report-dir "$WORK/reports" || {
  status=$?
  tail -n 20 "$dir/error.log" >&2
  exit "$status"
}
