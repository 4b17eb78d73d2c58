// A LEDBAT congestion controller (RFC 6817, as µTP uses it): the window grows while the one-way
// queuing delay is under the target and shrinks as it passes it, so a background transfer yields
// to the household's other traffic; losses halve it, as TCP does. Pure arithmetic, no timers.

/** RFC 6817's TARGET: the queuing delay the sender aims to add. */
export const TARGET_DELAY_US = 100_000;
/** Bytes the window may grow by per round trip at zero queuing delay, in packets (RFC 6817 GAIN, µTP uses 1; we allow faster growth on an idle line). */
export const GAIN = 4;
/**
 * A loss while the queuing delay is under this share of the target (25 ms) counts as random, not
 * congestion. At 1/8 (12.5 ms) µTP alone on the lossy link halved its window whenever it stood ~25 %
 * above the line's own (queue p90 15–21 ms), 9–12 times in 12 s, and used 73–75 % of the link; at
 * 1/4 it halves 3–8 times and uses 79 %, and TCP alongside keeps 81–85 % of its rate alone (was
 * 82–83 %; bench/link.ts, 2 alternating runs). The price: the overflow losses of a router whose
 * whole buffer holds under 25 ms are taken for random ones (a sixteenth off, not half).
 */
export const RANDOM_LOSS_DELAY = 1 / 4;
/**
 * The window kept after a random loss. Losses come at a rate of p per packet, so a window of W
 * packets meets W·p of them a round trip, each taking W·(1 − KEEP), against GAIN packets of growth:
 * the window settles near sqrt(GAIN / (p·(1 − KEEP))) packets, 80 with 7/8 at 0.5 % loss and 113
 * with 15/16. 80 is the 20 Mbit/s, 40 ms line's own 71 and little more, and every millisecond the
 * ends add to the round trip (a busy host's event loop) needs more: the link bench's windows sat at
 * p50 64–81 packets with round trips of 50–120 ms, µTP alone at 61 % of the link. With 15/16:
 * 73 %, and TCP keeps what it kept alongside (82–88 % of its rate alone; bench/link.ts).
 */
export const RANDOM_LOSS_KEEP = 15 / 16;
/** The base delay is the least delay seen in each of the last BASE_HISTORY minutes. */
const BASE_HISTORY = 10;
const BASE_INTERVAL_MS = 60_000;
/** Delay samples averaged for one decision (RFC 6817 CURRENT_FILTER). */
const CURRENT_FILTER = 4;

/**
 * `a - b` for one-way delay samples: they are differences of the two peers' 32-bit microsecond
 * clocks, which are unrelated, so a sample is any value modulo 2³² and consecutive samples may lie
 * on either side of 0 (when the clocks' offset is near a multiple of 2³² µs, as between processes
 * started within the path's delay of each other). Differences of samples are small: compared as
 * signed 32-bit, as libutp does.
 */
function delayDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** The least of `samples` on the 32-bit circle (they span far less than half of it). */
function leastDelay(samples: readonly number[]): number {
  let least = samples[0]!;
  for (let i = 1; i < samples.length; i++) if (delayDiff(samples[i]!, least) < 0) least = samples[i]!;
  return least;
}

export interface LedbatOptions {
  /** Bytes of one full packet. */
  mss: number;
  /** @default 2 × mss */
  minWindow?: number;
  /** Upper bound of the window in bytes. */
  maxWindow: number;
  /** @default 10 × mss */
  initialWindow?: number;
  targetUs?: number;
}

export class Ledbat {
  /** Congestion window in bytes. */
  window: number;
  private mss: number;
  private minWindow: number;
  private readonly maxWindow: number;
  private readonly target: number;
  private readonly baseMinutes: number[] = [];
  private baseStartedMs = -Infinity;
  private readonly current: number[] = [];
  private lastLossMs = -Infinity;
  /** Until the first loss or half the target's delay: the window doubles each round trip (as TCP's slow start). */
  slowStart = true;
  /** Slow start after a timeout ends here: half the window the timeout found (as TCP's ssthresh). */
  private slowStartEnd = Infinity;

  constructor(private readonly options: LedbatOptions) {
    this.mss = options.mss;
    this.minWindow = options.minWindow ?? 2 * options.mss;
    this.maxWindow = options.maxWindow;
    this.window = Math.min(this.maxWindow, options.initialWindow ?? 10 * options.mss);
    this.target = options.targetUs ?? TARGET_DELAY_US;
  }

  /** The path carries bigger packets (a probe of that size came through): the floor follows, in packets. */
  setMss(mss: number): void {
    this.mss = mss;
    this.minWindow = this.options.minWindow ?? 2 * mss;
    this.window = Math.min(this.maxWindow, Math.max(this.window, this.minWindow));
  }

  /** The least one-way delay remembered (µs, on the peers' unsynchronised clocks: only differences matter). */
  get baseDelay(): number {
    return this.baseMinutes.length ? leastDelay(this.baseMinutes) : 0;
  }

  /** The queuing delay now: the filtered sample above the base (µs). */
  get queuingDelay(): number {
    if (!this.current.length) return 0;
    return Math.max(0, delayDiff(leastDelay(this.current), this.baseDelay));
  }

  /** A one-way delay sample (the peer's timestampDiff) from an ack. */
  delaySample(delayUs: number, nowMs: number): void {
    delayUs >>>= 0;
    if (nowMs - this.baseStartedMs >= BASE_INTERVAL_MS || !this.baseMinutes.length) {
      this.baseMinutes.push(delayUs);
      if (this.baseMinutes.length > BASE_HISTORY) this.baseMinutes.shift();
      this.baseStartedMs = nowMs;
    } else if (delayDiff(delayUs, this.baseMinutes[this.baseMinutes.length - 1]!) < 0) {
      this.baseMinutes[this.baseMinutes.length - 1] = delayUs;
    }
    this.current.push(delayUs);
    if (this.current.length > CURRENT_FILTER) this.current.shift();
  }

  /** `bytesAcked` newly acknowledged while `flightBytes` were in flight. */
  onAck(bytesAcked: number, flightBytes: number): void {
    const offTarget = (this.target - this.queuingDelay) / this.target;
    // Grow only a window that was used (RFC 6817 §2.4.1: no credit for an idle window).
    if (offTarget > 0 && flightBytes + bytesAcked < this.window - this.mss) return;
    if (this.slowStart && this.queuingDelay < this.target / 2 && this.window < this.slowStartEnd) {
      this.window = Math.min(this.maxWindow, this.slowStartEnd, this.window + bytesAcked);
      return;
    }
    this.slowStart = false;
    const change = (GAIN * offTarget * bytesAcked * this.mss) / this.window;
    this.window = Math.max(this.minWindow, Math.min(this.maxWindow, this.window + change));
  }

  /**
   * A loss detected by selective or duplicate acks, at most once per round trip: halve, as TCP
   * does, when the queue has grown; with the queue near empty the loss cannot be the bottleneck's
   * queue overflowing and is taken for the line's own (random) loss: the window gives up only a
   * sixteenth (RANDOM_LOSS_KEEP; as TCP Veno tells random loss from congestion). Halving on every
   * random loss would leave half of a lossy line unused: at 0.5 % loss and 40 ms the window settles
   * near sqrt(2·GAIN/p) = 40 packets, under the line's 71.
   */
  onLoss(nowMs: number, rttMs: number): 'random' | 'congested' | null {
    if (nowMs - this.lastLossMs < Math.max(rttMs, 1)) return null;
    this.lastLossMs = nowMs;
    this.slowStart = false;
    const congested = this.queuingDelay >= this.target * RANDOM_LOSS_DELAY;
    this.window = Math.max(this.minWindow, this.window * (congested ? 0.5 : RANDOM_LOSS_KEEP));
    return congested ? 'congested' : 'random';
  }

  /**
   * A retransmission timeout: back to the floor, then slow start up to half the window it had (as
   * TCP after a timeout), not the slow linear climb: a timeout on a busy host is often a stall, and
   * climbing back from two packets at GAIN a round trip took ~17 round trips on a 20 Mbit/s, 40 ms line.
   */
  onTimeout(): void {
    this.slowStartEnd = Math.max(this.minWindow, this.window / 2);
    this.slowStart = true;
    this.window = this.minWindow;
  }
}
