# Shared by the bench scripts (sourced): ports, readiness, and the upstream every proxy is put in
# front of.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (up to 10 s) until http://127.0.0.1:PORT/ answers.
wait_port() {
  for _ in $(seq 1 400); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.025
  done
  echo "nothing answers on port $1" >&2
  return 1
}

# write_upstream_conf DIR PORT: DIR/nginx.conf for the upstream, one nginx worker answering every
# request with 1 KiB (`return 200`); its logs and temporary files stay in DIR.
write_upstream_conf() {
  local dir=$1 port=$2 body
  body=$(head -c 1024 /dev/zero | tr '\0' 'x')
  mkdir -p "$dir/logs" "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOC
worker_processes 1;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
EOC
}
