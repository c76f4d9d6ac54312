// Audio/video calls and screen sharing: a mesh of RTCPeerConnections, one per
// other participant, signalled through the relay (offer/answer/ice-candidate
// targeted by toUserId). Joining a call broadcasts `peer-join` {kind:"call"};
// members already in the call answer that by connecting to the newcomer.
// Glare is handled with the "perfect negotiation" pattern. Nothing here may
// throw into the page: without WebRTC or a camera the room works as before.
import { on } from './bus.js';
import { ctx, signal, signalQuietly } from './ctx.js';
import { $, el } from './dom.js';
import { showNotice } from './notice.js';
import { nameOf } from './people.js';

const callBtn = $('call');
const shareBtn = $('screen-share');
const panel = $('call-panel');
const localVideo = $('local-video');
const remotes = $('remote-videos');
const statusEl = $('call-status');
const invite = $('call-invite');
const inviteText = $('call-invite-text');
const micBtn = $('toggle-mic');
const camBtn = $('toggle-camera');

const supported = () => typeof window.RTCPeerConnection === 'function' && !!navigator.mediaDevices?.getUserMedia;
const canShare = () => supported() && typeof navigator.mediaDevices.getDisplayMedia === 'function';

let enabled = false;
let inCall = false;
let localStream = null;   // camera and/or microphone; null = receive only
let screenTrack = null;
const peers = new Map();  // userId -> {pc, polite, makingOffer, ignoreOffer, chain, tile}
const members = new Set(); // others known to be in a call (for the invitation)

/** Shows the call buttons when this browser and the page config allow calls. */
export function setupCalls(allowed) {
  enabled = allowed && supported();
  callBtn.hidden = !enabled;
  shareBtn.hidden = !enabled || !canShare();
  shareBtn.disabled = true;
}

// ---- local media -------------------------------------------------------------------------------
async function getLocalMedia() {
  for (const constraints of [{ audio: true, video: true }, { audio: true }, { video: true }]) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      if (err?.name === 'NotAllowedError' || err?.name === 'SecurityError') break; // refused: don't ask again
    }
  }
  return null;
}

const track = (kind) => localStream?.getTracks().find((t) => t.kind === kind) || null;

function showLocal() {
  const tracks = screenTrack ? [screenTrack] : localStream?.getVideoTracks() || [];
  localVideo.srcObject = tracks.length ? new MediaStream(tracks) : null;
  localVideo.closest('.tile').classList.toggle('no-video', !tracks.length);
}

// ---- peers ---------------------------------------------------------------------------------------
function tileFor(userId) {
  const figure = el('figure', 'tile no-video');
  figure.dataset.userId = userId;
  const video = el('video');
  video.autoplay = true;
  video.playsInline = true;
  const name = nameOf(userId);
  figure.append(video, el('span', 'avatar', name.slice(0, 1).toUpperCase()), el('figcaption', '', name));
  remotes.append(figure);
  return figure;
}

/** Sends our media; with none, still asks for the others' (receive-only). */
function addLocalTracks(pc) {
  const tracks = localStream ? localStream.getTracks() : [];
  for (const t of tracks) pc.addTrack(t, localStream);
  for (const kind of ['audio', 'video']) {
    if (!tracks.some((t) => t.kind === kind) && !pc.getTransceivers().some((x) => x.receiver.track?.kind === kind)) {
      pc.addTransceiver(kind, { direction: 'recvonly' });
    }
  }
  if (screenTrack) sendVideo(pc, screenTrack);
}

function createPeer(userId, { initiator }) {
  const pc = new RTCPeerConnection({ iceServers: ctx.config.iceServers });
  // Both ends must agree on who yields in a glare: compare the user ids.
  const peer = {
    pc, polite: ctx.me.userId < userId, makingOffer: false, ignoreOffer: false, tracksAdded: initiator,
    chain: Promise.resolve(), candidates: [], tile: tileFor(userId),
  };
  peers.set(userId, peer);
  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      await signal('offer', { description: pc.localDescription.toJSON() }, { to: userId });
    } catch (err) {
      console.warn('offer failed', err);
    } finally {
      peer.makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    if (candidate) signalQuietly('ice-candidate', { candidate: candidate.toJSON() }, { to: userId });
  };
  pc.ontrack = ({ streams, track: t }) => {
    const video = peer.tile.querySelector('video');
    video.srcObject = streams[0] || new MediaStream([t]);
    video.play?.().catch(() => {});
    if (t.kind !== 'video') return;
    // A receive-only or camera-off peer sends a muted video track: show their initial instead.
    const sync = () => peer.tile.classList.toggle('no-video', t.muted || t.readyState === 'ended');
    t.addEventListener('mute', sync);
    t.addEventListener('unmute', sync);
    t.addEventListener('ended', sync);
    sync();
  };
  pc.onconnectionstatechange = () => {
    peer.tile.dataset.state = pc.connectionState;
    if (pc.connectionState === 'failed') pc.restartIce?.();
    updateStatus();
  };
  if (initiator) addLocalTracks(pc); // the answerer adds its tracks after the offer, reusing its m-lines
  updateStatus();
  return peer;
}

function closePeer(userId) {
  const peer = peers.get(userId);
  if (!peer) return;
  peers.delete(userId);
  try { peer.pc.close(); } catch { /* already closed */ }
  peer.tile.remove();
  updateStatus();
}

/** Runs signaling steps for one peer in order (a candidate must not overtake its offer). */
function queue(userId, step) {
  const peer = peers.get(userId);
  if (!peer) return;
  peer.chain = peer.chain.then(() => step(peer)).catch((err) => console.warn('signaling step failed', err));
}

async function onDescription(peer, fromUserId, description) {
  const { pc } = peer;
  const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
  peer.ignoreOffer = !peer.polite && collision;
  if (peer.ignoreOffer) return;
  await pc.setRemoteDescription(description);
  // Candidates can overtake their offer through the relay: apply the early ones now.
  for (const c of peer.candidates.splice(0)) await pc.addIceCandidate(c).catch(() => {});
  if (description.type !== 'offer') return;
  if (!peer.tracksAdded) { peer.tracksAdded = true; addLocalTracks(pc); }
  await pc.setLocalDescription();
  await signal('answer', { description: pc.localDescription.toJSON() }, { to: fromUserId });
}

// ---- screen sharing --------------------------------------------------------------------------------
/** Puts `t` on the connection's video sender (opening one when we only received video). */
function sendVideo(pc, t) {
  const tr = pc.getTransceivers().find((x) => x.sender.track?.kind === 'video')
    || pc.getTransceivers().find((x) => x.receiver.track?.kind === 'video' && !x.stopped);
  if (!tr) { if (t) pc.addTrack(t); return; }
  if (t && (tr.direction === 'recvonly' || tr.direction === 'inactive')) tr.direction = 'sendrecv'; // renegotiates
  tr.sender.replaceTrack(t).catch((err) => console.warn('replaceTrack failed', err));
}

async function startShare() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch (err) {
    if (err?.name !== 'NotAllowedError' && err?.name !== 'AbortError') showNotice('Screen sharing is not available here.', { transient: true });
    return;
  }
  screenTrack = stream.getVideoTracks()[0] || null;
  if (!screenTrack) return;
  screenTrack.addEventListener('ended', stopShare); // the browser's own "Stop sharing" button
  for (const { pc } of peers.values()) sendVideo(pc, screenTrack);
  setPressed(shareBtn, true, 'Stop sharing');
  showLocal();
}

function stopShare() {
  if (!screenTrack) return;
  screenTrack.removeEventListener('ended', stopShare);
  screenTrack.stop();
  screenTrack = null;
  for (const { pc } of peers.values()) sendVideo(pc, track('video'));
  setPressed(shareBtn, false, 'Share screen');
  showLocal();
}

// ---- the call as a whole -------------------------------------------------------------------------------
function setPressed(btn, pressed, text) {
  btn.setAttribute('aria-pressed', String(pressed));
  const label = btn.querySelector('.label');
  if (label) label.textContent = text; else btn.textContent = text;
}

function updateStatus() {
  if (!inCall) return;
  const names = [...peers.keys()].map(nameOf);
  statusEl.textContent = names.length ? `In a call with ${names.join(', ')}` : 'Waiting for others to join…';
}

function showInvite() {
  const names = [...members].map(nameOf);
  invite.hidden = inCall || !names.length;
  inviteText.textContent = names.length ? `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} in a call.` : '';
  panel.hidden = !inCall && invite.hidden;
}

async function joinCall() {
  if (!enabled || inCall || !ctx.me) return;
  callBtn.disabled = true;
  localStream = await getLocalMedia();
  inCall = true;
  callBtn.disabled = false;
  setPressed(callBtn, true, 'Hang up');
  callBtn.classList.add('danger');
  shareBtn.disabled = false;
  micBtn.disabled = !track('audio');
  camBtn.disabled = !track('video');
  panel.hidden = false;
  showInvite();
  showLocal();
  if (!localStream) showNotice('No camera or microphone available: you can see and hear the others only.', { transient: true });
  updateStatus();
  try {
    await signal('peer-join', { kind: 'call', displayName: ctx.me.displayName });
  } catch (err) {
    showNotice(err, { transient: true });
    hangUp({ quiet: true });
  }
}

export function hangUp({ quiet = false } = {}) {
  if (!inCall) return;
  inCall = false;
  for (const userId of [...peers.keys()]) closePeer(userId);
  stopShare();
  localStream?.getTracks().forEach((t) => t.stop());
  localStream = null;
  showLocal();
  setPressed(callBtn, false, 'Call');
  callBtn.classList.remove('danger');
  shareBtn.disabled = true;
  statusEl.textContent = '';
  if (!quiet) signalQuietly('end-call', { kind: 'call' });
  showInvite();
}

function toggleTrack(kind, btn, onText, offText) {
  const t = track(kind);
  if (!t) return;
  t.enabled = !t.enabled;
  setPressed(btn, !t.enabled, t.enabled ? onText : offText);
}

callBtn.addEventListener('click', () => (inCall ? hangUp() : joinCall()));
shareBtn.addEventListener('click', () => (screenTrack ? stopShare() : startShare()));
$('hangup').addEventListener('click', () => hangUp());
$('call-join').addEventListener('click', () => joinCall());
$('call-dismiss').addEventListener('click', () => { invite.hidden = true; panel.hidden = !inCall; });
micBtn.addEventListener('click', () => toggleTrack('audio', micBtn, 'Mute', 'Unmute'));
camBtn.addEventListener('click', () => toggleTrack('video', camBtn, 'Camera off', 'Camera on'));

// ---- signaling events ----------------------------------------------------------------------------------
const fromOther = (ev) => ev.fromUserId && ev.fromUserId !== ctx.me?.userId; // targeted events echo to us

function guard(fn) {
  return (ev) => {
    if (!enabled || !fromOther(ev)) return;
    try { fn(ev); } catch (err) { console.warn('call event failed', err); }
  };
}

on('sse:peer-join', guard((ev) => {
  if (ev.data?.kind !== 'call') return; // people.js has already learnt their name from it
  members.add(ev.fromUserId);
  if (inCall) {
    closePeer(ev.fromUserId); // they (re)joined: start afresh
    createPeer(ev.fromUserId, { initiator: true });
  }
  showInvite();
}));
for (const type of ['offer', 'answer']) {
  on(`sse:${type}`, guard((ev) => {
    const description = ev.data?.description;
    if (!inCall || !description?.type) return;
    members.add(ev.fromUserId);
    if (!peers.has(ev.fromUserId)) createPeer(ev.fromUserId, { initiator: false });
    queue(ev.fromUserId, (peer) => onDescription(peer, ev.fromUserId, description));
  }));
}
on('sse:ice-candidate', guard((ev) => {
  const candidate = ev.data?.candidate;
  if (!candidate || !inCall) return;
  if (!peers.has(ev.fromUserId)) createPeer(ev.fromUserId, { initiator: false });
  queue(ev.fromUserId, async (peer) => {
    if (!peer.pc.remoteDescription) { peer.candidates.push(candidate); return; }
    try { await peer.pc.addIceCandidate(candidate); } catch (err) { if (!peer.ignoreOffer) throw err; }
  });
}));
for (const type of ['end-call', 'peer-leave']) {
  on(`sse:${type}`, (ev) => {
    if (!fromOther(ev)) return;
    members.delete(ev.fromUserId);
    closePeer(ev.fromUserId);
    showInvite();
  });
}

// Tell the others we are gone when the page goes away (best effort).
window.addEventListener('pagehide', () => {
  if (inCall) signalQuietly('end-call', { kind: 'call' }, { keepalive: true });
});
on('stopped', () => hangUp({ quiet: true }));
