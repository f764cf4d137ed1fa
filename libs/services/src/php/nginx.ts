/**
 * nginx's configuration on a php node, from what the node does (pure; the agent writes it and
 * reloads nginx). Every node runs one nginx on the first port of its range:
 *
 * - the **proxy** (the service's URL) serves static files itself, or passes them to the web nodes,
 *   and runs PHP on its own php-fpm, or passes it to the backends;
 * - a **backend** runs PHP on its php-fpm (and serves the static files a proxy sends it);
 * - a **web** node serves static files.
 *
 * Paths are relative to nginx's prefix, the node's work directory. Requests are logged to a FIFO in
 * three fields (`$msec $status $request_time`) that the agent reads for the node's figures.
 */

export interface UpstreamServer {
  readonly nodeId: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

export type PhpHandling =
  | { readonly kind: 'local'; readonly fpm: { readonly address: string; readonly port: number } }
  | { readonly kind: 'remote'; readonly servers: readonly UpstreamServer[] }
  | { readonly kind: 'none' };

export type StaticHandling =
  { readonly kind: 'local' } | { readonly kind: 'remote'; readonly servers: readonly UpstreamServer[] };

export interface SiteConfig {
  readonly listen: { readonly address: string; readonly port: number };
  /**
   * The document root, relative to the work directory: a link the agent points at the served
   * version's directory (a switch moves the link, and nginx needs no reload); none: every request
   * answers 503. PHP gets the real path (`$realpath_root`), so a request stays in one version.
   */
  readonly root?: string;
  /**
   * Paths of the document root where the node shows a volume it mounts (`wp-content/uploads`): served
   * from this node as static files, whatever `php` and `static` say, and never run as PHP.
   */
  readonly volumes?: readonly string[];
  readonly php: PhpHandling;
  readonly static: StaticHandling;
  /** The node that faces clients (the proxy): it sets X-Forwarded-*; the others trust `trusted`'s. */
  readonly front: boolean;
  /** The addresses whose X-Forwarded-For and X-Forwarded-Proto a node behind the proxy believes. */
  readonly trusted: readonly string[];
  /** nginx's `client_max_body_size` (see `bodyLimit`). */
  readonly bodyLimit: string;
  /** How long nginx waits for PHP (php's max_execution_time plus a margin), in seconds. */
  readonly phpTimeout: number;
  readonly workers: number;
  /** Anonymous GET and HEAD answers of PHP kept this long (0: no cache). Only on the front. */
  readonly cacheSeconds: number;
  /**
   * The proxy's own PHP, for when every backend fails or goes: a second server of this nginx on
   * `listen` (running PHP on `fpm`), the backends' `backup` in the upstream.
   */
  readonly tls?: {
    /** HTTPS on this port too, with these files (relative to the work directory). */
    readonly port: number;
    readonly certificate: string;
    readonly key: string;
    /** Plain HTTP answers with a redirection to HTTPS. */
    readonly redirect: boolean;
  };
  readonly fallback?: {
    readonly listen: { readonly address: string; readonly port: number };
    readonly fpm: { readonly address: string; readonly port: number };
  };
}

const servers = (list: readonly UpstreamServer[]): string[] =>
  list.map((s) => `    server ${s.address}:${s.port} weight=${s.weight} max_fails=1 fail_timeout=2s;`);

const upstream = (
  name: string,
  list: readonly UpstreamServer[],
  backup?: { readonly address: string; readonly port: number },
): string[] => [
  `  upstream ${name} {`,
  ...servers(list),
  ...(backup ? [`    server ${backup.address}:${backup.port} backup;`] : []),
  '    keepalive 32;',
  '  }',
];

/** What php-fpm is told of a request (our own list: Debian's sends HTTP_HOST without the port). */
const fastcgiParams = (front: boolean): string[] =>
  [
    ['SCRIPT_FILENAME', '$realpath_root$fastcgi_script_name'],
    ['SCRIPT_NAME', '$fastcgi_script_name'],
    ['QUERY_STRING', '$query_string'],
    ['REQUEST_METHOD', '$request_method'],
    ['CONTENT_TYPE', '$content_type'],
    ['CONTENT_LENGTH', '$content_length'],
    ['REQUEST_URI', '$request_uri'],
    ['DOCUMENT_URI', '$document_uri'],
    ['DOCUMENT_ROOT', '$realpath_root'],
    ['SERVER_PROTOCOL', '$server_protocol'],
    ['REQUEST_SCHEME', front ? '$scheme' : '$cps_scheme'],
    ['HTTPS', front ? '$https' : '$cps_https'],
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'nginx'],
    ['REMOTE_ADDR', '$remote_addr'],
    ['REMOTE_PORT', '$remote_port'],
    ['SERVER_ADDR', '$server_addr'],
    ['SERVER_PORT', '$server_port'],
    ['SERVER_NAME', '$host'],
    ['REDIRECT_STATUS', '200'],
    // httpoxy: a request's Proxy header must not become PHP's HTTP_PROXY
    ['HTTP_PROXY', '""'],
  ].map(([k, v]) => `      fastcgi_param ${k} ${v};`);

const proxyHeaders = (front: boolean, timeout: number): string[] => [
  '      proxy_http_version 1.1;',
  '      proxy_set_header Connection "";',
  '      proxy_set_header Host $http_host;',
  '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  `      proxy_set_header X-Forwarded-Proto ${front ? '$scheme' : '$cps_scheme'};`,
  // a node that refuses, times out or answers 502-504 passes the request to the next one; nginx
  // retries a request it has already sent only when its method is idempotent
  '      proxy_next_upstream error timeout http_502 http_503 http_504;',
  '      proxy_next_upstream_tries 3;',
  '      proxy_connect_timeout 1s;',
  `      proxy_read_timeout ${timeout}s;`,
  `      proxy_send_timeout ${timeout}s;`,
];

const fastcgi = (c: SiteConfig, fpm: { address: string; port: number }): string[] => [
  '    location ~ [^/]\\.php(/|$) {',
  '      fastcgi_split_path_info ^(.+?\\.php)(/.*)$;',
  '      try_files $fastcgi_script_name =404;',
  `      fastcgi_pass ${fpm.address}:${fpm.port};`,
  '      fastcgi_index index.php;',
  '      fastcgi_param PATH_INFO $fastcgi_path_info;',
  ...fastcgiParams(c.front),
  `      fastcgi_read_timeout ${c.phpTimeout}s;`,
  ...(c.front && c.cacheSeconds > 0 ? cacheUse('fastcgi', c.cacheSeconds) : []),
  '    }',
];

const cacheUse = (kind: 'fastcgi' | 'proxy', seconds: number): string[] => [
  `      ${kind}_cache micro_${kind};`,
  // the served version's real directory: a switch starts with an empty cache
  `      ${kind}_cache_key "$realpath_root$scheme$request_method$http_host$request_uri";`,
  `      ${kind}_cache_valid 200 301 302 404 ${seconds}s;`,
  `      ${kind}_cache_methods GET HEAD;`,
  `      ${kind}_cache_bypass $cps_no_cache;`,
  `      ${kind}_no_cache $cps_no_cache;`,
  `      ${kind}_cache_lock on;`,
  `      ${kind}_cache_use_stale updating error timeout;`,
  '      add_header X-Cache $upstream_cache_status;',
];

const phpRemote = (c: SiteConfig): string[] => [
  '      proxy_pass http://php_nodes;',
  ...proxyHeaders(c.front, c.phpTimeout),
  ...(c.front && c.cacheSeconds > 0 ? cacheUse('proxy', c.cacheSeconds) : []),
];

/** The server block's locations: where each request goes. */
const locations = (c: SiteConfig): string[] => {
  if (c.root === undefined)
    return ['    location / {', '      add_header Retry-After 2 always;', '      return 503;', '    }'];
  const hidden = [
    '    location ~ /\\.(?!well-known/) {',
    '      deny all;',
    '    }',
    // a volume's files: this node's mount (shared by every node), a script there never runs
    ...(c.volumes ?? []).flatMap((v) => [
      `    location ^~ /${v}/ {`,
      '      location ~* (\\.(php|phar|phtml|pht|phps)$|/\\.) {',
      '        return 403;',
      '      }',
      '    }',
    ]),
  ];
  // a file that exists goes to the web nodes (418 is only a jump to @web, never an answer)
  const toWeb =
    c.static.kind === 'remote' ? ['      if (-f $request_filename) {', '        return 418;', '      }'] : [];
  const web =
    c.static.kind === 'remote'
      ? [
          '    error_page 418 = @web;',
          '    location @web {',
          '      proxy_pass http://web_nodes;',
          ...proxyHeaders(c.front, 30),
          '    }',
        ]
      : [];
  switch (c.php.kind) {
    case 'local':
      return [
        ...hidden,
        ...web,
        '    location / {',
        ...toWeb,
        '      try_files $uri $uri/ /index.php$is_args$args;',
        '    }',
        ...fastcgi(c, c.php.fpm),
      ];
    case 'remote':
      return [
        ...hidden,
        ...web,
        '    location / {',
        ...toWeb,
        // a directory, a pretty permalink, a script: the backend resolves it as it would alone
        ...(c.static.kind === 'local' ? ['      try_files $uri @php;', '    }'] : [...phpRemote(c), '    }']),
        '    location @php {',
        ...phpRemote(c),
        '    }',
        '    location ~ [^/]\\.php(/|$) {',
        ...phpRemote(c),
        '    }',
      ];
    case 'none':
      return [...hidden, '    location / {', '      try_files $uri $uri/ =404;', '    }'];
  }
};

/** The proxy's own PHP, as a backend of its own (see `SiteConfig.fallback`). */
const fallbackServer = (c: SiteConfig, f: NonNullable<SiteConfig['fallback']>): string[] => {
  const local: SiteConfig = {
    ...c,
    front: false,
    php: { kind: 'local', fpm: f.fpm },
    static: { kind: 'local' },
  };
  return [
    '  server {',
    `    listen ${f.listen.address}:${f.listen.port};`,
    '    server_name _;',
    `    root ${c.root};`,
    '    index index.php index.html index.htm;',
    `    set_real_ip_from ${f.listen.address};`,
    '    real_ip_header X-Forwarded-For;',
    ...locations(local),
    '  }',
  ];
};

/** The whole `nginx.conf` of a node. */
export const nginxConf = (c: SiteConfig): string => {
  const upstreams = [
    ...(c.php.kind === 'remote' && c.php.servers.length > 0
      ? upstream('php_nodes', c.php.servers, c.fallback?.listen)
      : []),
    ...(c.static.kind === 'remote' && c.static.servers.length > 0
      ? upstream('web_nodes', c.static.servers)
      : []),
  ];
  const cache = c.front && c.cacheSeconds > 0;
  const lines = [
    `worker_processes ${c.workers};`,
    'pid nginx/nginx.pid;',
    'error_log stderr warn;',
    'events {',
    '  worker_connections 4096;',
    '}',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    '  server_tokens off;',
    '  sendfile on;',
    '  tcp_nopush on;',
    '  tcp_nodelay on;',
    '  keepalive_timeout 65s;',
    '  keepalive_requests 100000;',
    '  client_body_temp_path nginx/body;',
    '  proxy_temp_path nginx/proxy;',
    '  fastcgi_temp_path nginx/fastcgi;',
    '  uwsgi_temp_path nginx/uwsgi;',
    '  scgi_temp_path nginx/scgi;',
    `  client_max_body_size ${c.bodyLimit};`,
    "  log_format cps '$msec $status $request_time';",
    // at most one pipe buffer a write: the workers' lines never interleave
    '  access_log logs/access.fifo cps buffer=4k flush=1s;',
    '  map $http_x_forwarded_proto $cps_scheme {',
    '    https https;',
    '    default http;',
    '  }',
    '  map $http_x_forwarded_proto $cps_https {',
    '    https on;',
    "    default '';",
    '  }',
    ...(cache
      ? [
          '  proxy_cache_path nginx/cache levels=1:2 keys_zone=micro_proxy:10m max_size=256m inactive=10m use_temp_path=off;',
          '  fastcgi_cache_path nginx/fcache levels=1:2 keys_zone=micro_fastcgi:10m max_size=256m inactive=10m use_temp_path=off;',
          // a visitor with a cookie (signed in, a comment author) is never served from the cache
          '  map $http_cookie $cps_no_cache {',
          "    default '';",
          '    ~. 1;',
          '  }',
        ]
      : []),
    ...upstreams,
    '  server {',
    `    listen ${c.listen.address}:${c.listen.port} default_server backlog=4096;`,
    ...(c.tls
      ? [
          `    listen ${c.listen.address}:${c.tls.port} ssl default_server backlog=4096;`,
          `    ssl_certificate ${c.tls.certificate};`,
          `    ssl_certificate_key ${c.tls.key};`,
          '    ssl_protocols TLSv1.2 TLSv1.3;',
          '    ssl_session_cache shared:tls:10m;',
          ...(c.tls.redirect
            ? [
                '    if ($scheme = http) {',
                `      return 301 https://$host:${c.tls.port}$request_uri;`,
                '    }',
              ]
            : []),
        ]
      : []),
    '    server_name _;',
    ...(c.root !== undefined ? [`    root ${c.root};`] : []),
    '    index index.php index.html index.htm;',
    ...(c.front
      ? []
      : [...c.trusted.map((a) => `    set_real_ip_from ${a};`), '    real_ip_header X-Forwarded-For;']),
    ...locations(c),
    '  }',
    ...(c.fallback && c.root !== undefined ? fallbackServer(c, c.fallback) : []),
    '}',
  ];
  return lines.join('\n') + '\n';
};
