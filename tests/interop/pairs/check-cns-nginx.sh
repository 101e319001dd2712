#!/usr/bin/env bash
# check-cns against Debian's nginx configured the way public CNS integrations on nginx are:
# ssl_verify_client optional, ssl_verify_depth 5, ssl_client_certificate with the trusted CAs,
# ssl_crl with local CRL files (read at start, checked along the whole chain), ssl_ocsp leaf (nginx
# 1.19+ asks the OCSP responder in each client certificate's authorityInfoAccess), and a 403
# courtesy page when $ssl_client_verify is not SUCCESS; no policy-OID or CN rules. Its expected
# deviations: fixtures/peers/nginx-cns.toml. Passes only if check-cns exits 0 with that peer file.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
peer="$root/fixtures/peers/nginx-cns.toml"
if [ ! -x /usr/sbin/nginx ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx=/usr/sbin/nginx
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
url="https://127.0.0.1:$port/cns/login"
dir="$WORK/nginx"
ca="$WORK/ca"
mkdir -p "$dir/tmp"

# Our TEST CAs and CRLs (the same on every run); the service trusts the root only.
"$HARNESS" check-cns --url "$url" --ca-out "$ca" --ca-only >/dev/null
# The service's own server certificate, as an integrator would make one.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1/O=nginx CNS peer TEST ONLY" \
  -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null

# One process (no master, no workers to switch users): everything stays under $WORK.
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/server.crt;
    ssl_certificate_key $dir/server.key;
    ssl_client_certificate $ca/root.pem;
    ssl_verify_client optional;
    ssl_verify_depth 5;
    ssl_crl $ca/crl/all.crl.pem;
    ssl_ocsp leaf;
    default_type text/html;
    location / {
      if (\$ssl_client_verify != SUCCESS) {
        return 403 "<!DOCTYPE html><title>CNS</title><h1>Accesso con CNS negato</h1><p>\$ssl_client_verify</p>\n";
      }
      return 200 "<!DOCTYPE html><title>CNS</title><h1>Accesso con CNS effettuato</h1>\n";
    }
  }
}
CONF
"$nginx" -c "$dir/nginx.conf" -p "$dir" >>"$dir/stdout.log" 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -ks -o /dev/null "https://127.0.0.1:$port/" && break
  sleep 0.1
done
echo "== $("$nginx" -v 2>&1) at $url"
"$HARNESS" check-cns --url "$url" --ca-out "$ca" --accept-marker "Accesso con CNS effettuato" \
  --peer "$peer" --report-dir "$WORK/reports" || {
  status=$?
  tail -n 20 "$dir/error.log" >&2
  exit "$status"
}
