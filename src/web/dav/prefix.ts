// Where the WebDAV share answers on the web port: apart from the server (src/web/dav/server.ts), which the web app loads on first use.

export const DAV_PREFIX = '/dav';
