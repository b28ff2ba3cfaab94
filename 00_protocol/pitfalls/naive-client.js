// @ts-check
/** The reconnecting WebSocket of a thousand blog posts, as they write it: pitfall 10 of README.md. */

/**
 * Reconnects after 1, 2, 4, 8… seconds (30 at most), and sends only while the socket is open: what is sent
 * during an outage is lost, and clients cut off together come back together.
 */
export class ReconnectingWebSocket {
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.attempt = 0;
    /** @type {(data: string) => void} */ this.onmessage = () => {};
    /** @type {() => void} */ this.onopen = () => {};
    /** @type {() => void} */ this.onclose = () => {};
    /** @type {() => void} */ this.onreconnect = () => {};
    this.connect();
  }

  connect() {
    this.ws = new WebSocket(this.url);
    this.ws.onopen = () => {
      this.attempt = 0;
      this.onopen();
    };
    this.ws.onmessage = (event) => this.onmessage(String(event.data));
    this.ws.onclose = () => {
      this.onclose();
      setTimeout(() => {
        this.onreconnect();
        this.connect();
      }, Math.min(30_000, 1000 * 2 ** this.attempt++));
    };
  }

  /** @param {string} data */
  send(data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data);
  }
}
