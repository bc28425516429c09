package vk

import (
	"fmt"
	"slices"
	"time"
	"unsafe"
)

// SequenceOptions configure NewSequence.
type SequenceOptions struct {
	// Timestamps records a GPU timestamp around every dispatch (see Timings).
	Timestamps bool
	// MaxTimed caps the dispatches timed per recording (default 4096).
	MaxTimed int
	// OneTime marks the recording as submitted once (a small driver hint).
	// Without it a recording can be submitted again and again.
	OneTime bool
}

// Sequence records dispatches, copies and fills into one command buffer,
// with the barriers their bindings need, and submits them with one
// vkQueueSubmit. Recording appends to a plain []uint64 op stream in Go and
// End turns it into Vulkan commands with one cgo call. A recorded sequence
// can be submitted many times: per-step values belong in a small buffer the
// host writes between submits, not in re-recording.
//
// A Sequence is not safe for concurrent use.
type Sequence struct {
	d    *Device
	c    unsafe.Pointer // *C.vkr_cmd
	opts SequenceOptions

	ops       []uint64
	labels    []string // per timed dispatch
	nqueries  uint32
	maxTimed  int
	recording bool
	recorded  bool
	pending   bool
	timedRun  bool // the last submitted recording had timestamps
	err       error
	ndispatch int
	nbarrier  int      // barriers between ops (not Begin's nor End's)
	hostBytes uint64   // bytes copied to or from host memory, or bound from it
	hostBound []string // host-memory buffers that dispatches bind, each once

	// Hazard tracking since the last barrier.
	reads, writes []Range

	closed bool
}

// NewSequence makes a sequence with its own command buffer and fence.
func (d *Device) NewSequence(opts SequenceOptions) (*Sequence, error) {
	if err := d.usable(); err != nil {
		return nil, err
	}
	s := &Sequence{d: d, opts: opts}
	var nq uint32
	if opts.Timestamps {
		if d.Info.TimestampValidBits == 0 {
			return nil, fmt.Errorf("vk: %s: the compute queue does not support timestamps", d.Info.Name)
		}
		s.maxTimed = opts.MaxTimed
		if s.maxTimed <= 0 {
			s.maxTimed = 4096
		}
		nq = uint32(s.maxTimed + 1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, r := cCreateCmd(d.c, nq)
	if r != Success {
		return nil, d.fail("vkCreateCommandPool", r, "sequence")
	}
	s.c = c
	d.seqs[s] = struct{}{}
	return s, nil
}

// Begin starts a new recording, discarding the previous one. The previous
// submission must have been waited for.
func (s *Sequence) Begin() error {
	if s.closed {
		return ErrClosed
	}
	if s.pending {
		return fmt.Errorf("vk: Sequence.Begin: the previous submission is still pending; Wait first")
	}
	s.ops = s.ops[:0]
	s.labels = s.labels[:0]
	s.reads = s.reads[:0]
	s.writes = s.writes[:0]
	s.err = nil
	s.ndispatch = 0
	s.nbarrier = 0
	s.hostBytes = 0
	s.hostBound = s.hostBound[:0]
	s.recording = true
	s.recorded = false
	s.nqueries = 0
	// Work from earlier submissions on this queue may still touch the same
	// buffers: order this recording after all of it.
	s.barrier()
	if s.opts.Timestamps {
		s.ops = append(s.ops, cOpResetQuery, 0, uint64(s.maxTimed+1))
		s.ops = append(s.ops, cOpTimestamp, cStageTop, 0)
		s.nqueries = 1
	}
	return nil
}

func (s *Sequence) setErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

const (
	allStages = cStageCompute | cStageTransfer
	allWrites = cAccessShaderWrite | cAccessTransferWrite
	allAccess = cAccessShaderRead | cAccessShaderWrite | cAccessTransferRead | cAccessTransferWrite
)

func (s *Sequence) barrier() {
	s.ops = append(s.ops, cOpBarrier, allStages, allStages, allWrites, allAccess)
	s.reads = s.reads[:0]
	s.writes = s.writes[:0]
}

// Barrier orders everything recorded so far before everything after. Dispatch,
// Copy and Fill insert barriers by themselves where their ranges conflict;
// Barrier is for dependencies the recorder cannot see.
func (s *Sequence) Barrier() {
	if !s.recording {
		s.setErr(fmt.Errorf("vk: Sequence.Barrier outside Begin/End"))
		return
	}
	s.barrier()
	s.nbarrier++
}

// hazard reports whether reading r (or writing, if write) conflicts with
// accesses since the last barrier.
func (s *Sequence) hazard(r Range, write bool) bool {
	for _, w := range s.writes {
		if w.overlaps(r) {
			return true
		}
	}
	if write {
		for _, x := range s.reads {
			if x.overlaps(r) {
				return true
			}
		}
	}
	return false
}

// Dispatch records p over groups workgroups with the descriptor set and push
// constants (exactly p.PushSize bytes). Errors are reported by End.
func (s *Sequence) Dispatch(p *Pipeline, set *DescriptorSet, groups [3]uint32, push []byte) {
	if !s.recording {
		s.setErr(fmt.Errorf("vk: Sequence.Dispatch outside Begin/End"))
		return
	}
	idx := s.ndispatch
	s.ndispatch++
	switch {
	case p == nil || p.closed:
		s.setErr(fmt.Errorf("vk: dispatch %d: pipeline is nil or closed", idx))
		return
	case set == nil || set.closed:
		s.setErr(fmt.Errorf("vk: dispatch %d (%s): descriptor set is nil or closed", idx, p.Name))
		return
	case set.Pipeline != p && set.Pipeline.dsl != p.dsl:
		s.setErr(fmt.Errorf("vk: dispatch %d (%s): descriptor set was made for %s", idx, p.Name, set.Pipeline.Name))
		return
	case uint32(len(push)) != p.PushSize:
		s.setErr(fmt.Errorf("vk: dispatch %d (%s): %d bytes of push constants, want %d", idx, p.Name, len(push), p.PushSize))
		return
	}
	mx := s.d.Info.MaxWorkgroupCount
	if groups[0] == 0 || groups[1] == 0 || groups[2] == 0 || groups[0] > mx[0] || groups[1] > mx[1] || groups[2] > mx[2] {
		s.setErr(fmt.Errorf("vk: dispatch %d (%s): %v workgroups (limits %v, none may be 0): %w", idx, p.Name, groups, mx, ErrTooLarge))
		return
	}
	need := false
	for i, r := range set.Ranges {
		if r.Buffer.closed {
			s.setErr(fmt.Errorf("vk: dispatch %d (%s): binding %d: buffer %s: %w", idx, p.Name, i, r.Buffer.Name, ErrClosed))
			return
		}
		if s.hazard(r, p.Bindings[i]&Write != 0) {
			need = true
		}
	}
	if need {
		s.barrier()
		s.nbarrier++
	}
	for i, r := range set.Ranges {
		if r.Buffer.Kind == HostMemory {
			s.hostBytes += r.Size
			if !slices.Contains(s.hostBound, r.Buffer.Name) {
				s.hostBound = append(s.hostBound, r.Buffer.Name)
			}
		}
		if p.Bindings[i]&Write != 0 {
			s.writes = append(s.writes, r)
		} else {
			s.reads = append(s.reads, r)
		}
	}
	s.ops = append(s.ops, cOpDispatch, p.pipeline, p.layout, set.handle, uint64(len(push)),
		uint64(groups[0]), uint64(groups[1]), uint64(groups[2]))
	for i := 0; i < len(push); i += 8 {
		var w [8]byte
		copy(w[:], push[i:])
		s.ops = append(s.ops, uint64(w[0])|uint64(w[1])<<8|uint64(w[2])<<16|uint64(w[3])<<24|
			uint64(w[4])<<32|uint64(w[5])<<40|uint64(w[6])<<48|uint64(w[7])<<56)
	}
	if s.opts.Timestamps && len(s.labels) < s.maxTimed {
		s.ops = append(s.ops, cOpTimestamp, cStageBottom, uint64(s.nqueries))
		s.nqueries++
		s.labels = append(s.labels, p.Name)
	}
}

// Copy records a buffer-to-buffer copy of min(src.Size, dst.Size) bytes.
func (s *Sequence) Copy(src, dst Range) {
	if !s.recording {
		s.setErr(fmt.Errorf("vk: Sequence.Copy outside Begin/End"))
		return
	}
	if err := src.check("copy source"); err != nil {
		s.setErr(err)
		return
	}
	if err := dst.check("copy destination"); err != nil {
		s.setErr(err)
		return
	}
	n := min(src.Size, dst.Size)
	src.Size, dst.Size = n, n
	if src.Buffer == dst.Buffer && src.overlaps(dst) {
		s.setErr(fmt.Errorf("vk: copy within %s: overlapping ranges", src.Buffer.Name))
		return
	}
	if s.hazard(src, false) || s.hazard(dst, true) {
		s.barrier()
		s.nbarrier++
	}
	if src.Buffer.Kind == HostMemory || dst.Buffer.Kind == HostMemory {
		s.hostBytes += n
	}
	s.reads = append(s.reads, src)
	s.writes = append(s.writes, dst)
	s.ops = append(s.ops, cOpCopy, src.Buffer.handle, dst.Buffer.handle, src.Offset, dst.Offset, n)
}

// Fill records filling dst with a 32-bit pattern (offset and size multiples of 4).
func (s *Sequence) Fill(dst Range, value uint32) {
	if !s.recording {
		s.setErr(fmt.Errorf("vk: Sequence.Fill outside Begin/End"))
		return
	}
	if err := dst.check("fill"); err != nil {
		s.setErr(err)
		return
	}
	if dst.Offset%4 != 0 || dst.Size%4 != 0 {
		s.setErr(fmt.Errorf("vk: fill of %s: offset %d and size %d must be multiples of 4", dst.Buffer.Name, dst.Offset, dst.Size))
		return
	}
	if s.hazard(dst, true) {
		s.barrier()
		s.nbarrier++
	}
	s.writes = append(s.writes, dst)
	s.ops = append(s.ops, cOpFill, dst.Buffer.handle, dst.Offset, dst.Size, uint64(value))
}

// End finishes recording: it reports the first recording error, or records
// the op stream into the command buffer with one cgo call.
func (s *Sequence) End() error {
	if s.closed {
		return ErrClosed
	}
	if !s.recording {
		return fmt.Errorf("vk: Sequence.End without Begin")
	}
	s.recording = false
	if s.err != nil {
		return s.err
	}
	if err := s.d.usable(); err != nil {
		return err
	}
	// Make GPU writes visible to host reads of mapped memory after the wait.
	s.ops = append(s.ops, cOpBarrier, allStages, cStageHost, allWrites, cAccessHostRead)
	r, bad := cRecord(s.d.c, s.c, s.ops, s.opts.OneTime)
	if r == ErrorUnknown && bad > 0 {
		return fmt.Errorf("vk: recording: malformed op stream at word %d", bad)
	}
	if r != Success {
		return s.d.fail("vkEndCommandBuffer", r, "")
	}
	s.recorded = true
	return nil
}

// Submit queues the recorded commands. Wait before reading results, before
// submitting again, and before Begin.
func (s *Sequence) Submit() error {
	if s.closed {
		return ErrClosed
	}
	if !s.recorded {
		return fmt.Errorf("vk: Sequence.Submit: nothing recorded (Begin, record, End first)")
	}
	if s.pending {
		return fmt.Errorf("vk: Sequence.Submit: already pending; Wait first")
	}
	if err := s.d.usable(); err != nil {
		return err
	}
	s.d.queueMu.Lock()
	r := cSubmit(s.d.c, s.c)
	s.d.queueMu.Unlock()
	if r != Success {
		return s.d.fail("vkQueueSubmit", r, "")
	}
	s.pending = true
	s.timedRun = s.opts.Timestamps
	if s.opts.OneTime {
		s.recorded = false
	}
	return nil
}

// Wait blocks until the submission finishes or timeout passes (ErrTimeout;
// the submission stays pending and Wait may be called again).
func (s *Sequence) Wait(timeout time.Duration) error {
	if s.closed {
		return ErrClosed
	}
	if !s.pending {
		return nil
	}
	if s.d.lost.Load() {
		s.pending = false
		return fmt.Errorf("vk: %s: %w", s.d.Info.Name, ErrDeviceLost)
	}
	ns := uint64(timeout.Nanoseconds())
	if timeout < 0 {
		ns = ^uint64(0)
	}
	r := cWait(s.d.c, s.c, ns)
	switch r {
	case Success:
		s.pending = false
		return nil
	case Timeout:
		return &CallError{Call: "vkWaitForFences", Result: r, Detail: fmt.Sprintf("GPU work not done after %v", timeout)}
	}
	s.pending = false
	return s.d.fail("vkWaitForFences", r, "")
}

// Run submits and waits.
func (s *Sequence) Run(timeout time.Duration) error {
	if err := s.Submit(); err != nil {
		return err
	}
	return s.Wait(timeout)
}

// Pending reports whether a submission has not been waited for.
func (s *Sequence) Pending() bool { return s.pending }

// Dispatches is the number of dispatches in the current recording.
func (s *Sequence) Dispatches() int { return s.ndispatch }

// Barriers is the number of barriers between the current recording's
// commands (those its hazards needed and Barrier's), not counting the one
// that orders it after earlier work nor the one that makes its writes
// visible to the host.
func (s *Sequence) Barriers() int { return s.nbarrier }

// HostBytes is the bytes the current recording moves across to or from
// HostMemory each time it runs: its copies with a host-memory end, and the
// host-memory ranges its dispatches bind (which a discrete GPU reads or
// writes over the bus).
func (s *Sequence) HostBytes() uint64 { return s.hostBytes }

// HostBound names the HostMemory buffers that the current recording's
// dispatches bind, each once, in order.
func (s *Sequence) HostBound() []string { return slices.Clone(s.hostBound) }

// Timing is the GPU time of one dispatch, from the end of the previous
// command to the end of this one.
type Timing struct {
	Name     string
	Duration time.Duration
}

// Timings returns per-dispatch GPU times of the last completed submission.
func (s *Sequence) Timings() ([]Timing, error) {
	if !s.opts.Timestamps {
		return nil, fmt.Errorf("vk: Sequence.Timings: made without Timestamps")
	}
	if s.pending || !s.timedRun {
		return nil, fmt.Errorf("vk: Sequence.Timings: no completed submission")
	}
	raw := make([]uint64, s.nqueries)
	if r := cQueryResults(s.d.c, s.c, 0, raw); r != Success {
		return nil, s.d.fail("vkGetQueryPoolResults", r, "")
	}
	mask := ^uint64(0)
	if b := s.d.Info.TimestampValidBits; b < 64 {
		mask = 1<<b - 1
	}
	out := make([]Timing, len(s.labels))
	for i := range out {
		dt := (raw[i+1] - raw[i]) & mask
		out[i] = Timing{Name: s.labels[i], Duration: time.Duration(float64(dt) * s.d.Info.TimestampPeriod)}
	}
	return out, nil
}

// Close waits for a pending submission (up to 10 s) and frees the sequence.
func (s *Sequence) Close() error {
	if s == nil || s.closed {
		return nil
	}
	var err error
	if s.pending {
		err = s.Wait(10 * time.Second)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.destroyLocked()
	return err
}

func (s *Sequence) destroyLocked() {
	if s.closed {
		return
	}
	s.closed = true
	cDestroyCmd(s.d.c, s.c)
	s.c = nil
	delete(s.d.seqs, s)
}

// stagingRing moves bytes between Go memory and device memory that the host
// cannot map: two halves of one host-visible buffer, so the CPU fills one
// while the GPU copies the other.
type stagingRing struct {
	buf  *Buffer
	half uint64
	seqs [2]*Sequence
}

const stagingSize = 32 << 20

func (d *Device) stagingLocked() (*stagingRing, error) {
	if d.staging != nil {
		return d.staging, nil
	}
	buf, err := d.NewBuffer("staging ring", stagingSize, HostMemory)
	if err != nil {
		return nil, err
	}
	if buf.Mapped() == nil {
		buf.Close()
		return nil, fmt.Errorf("vk: staging ring on %s is not host-visible", d.Info.Name)
	}
	st := &stagingRing{buf: buf, half: stagingSize / 2}
	for i := range st.seqs {
		if st.seqs[i], err = d.NewSequence(SequenceOptions{}); err != nil {
			for _, s := range st.seqs[:i] {
				s.Close()
			}
			buf.Close()
			return nil, err
		}
	}
	d.staging = st
	return st, nil
}

// direct reports whether b can be written and read through its mapping.
func (d *Device) direct(b *Buffer) bool {
	return b.Mapped() != nil && (b.Kind == HostMemory || !d.opts.ForceStaging)
}

// transferTimeout bounds one staging copy; a healthy device needs microseconds.
const transferTimeout = 60 * time.Second

// Upload copies src into dst at offset. It returns when dst holds the data.
// The GPU must not be using that part of dst.
func (d *Device) Upload(dst *Buffer, offset uint64, src []byte) error {
	if err := d.usable(); err != nil {
		return err
	}
	if err := dst.Slice(offset, uint64(len(src))).check("upload"); err != nil && len(src) > 0 {
		return err
	}
	if len(src) == 0 {
		return nil
	}
	if d.direct(dst) {
		copy(dst.Mapped()[offset:], src)
		return nil
	}
	d.stagingMu.Lock()
	defer d.stagingMu.Unlock()
	st, err := d.stagingLocked()
	if err != nil {
		return err
	}
	for i := 0; len(src) > 0; i++ {
		slot := i % 2
		seq := st.seqs[slot]
		if err := seq.Wait(transferTimeout); err != nil {
			return err
		}
		n := min(uint64(len(src)), st.half)
		copy(st.buf.Mapped()[uint64(slot)*st.half:], src[:n])
		if err := seq.Begin(); err != nil {
			return err
		}
		seq.Copy(st.buf.Slice(uint64(slot)*st.half, n), dst.Slice(offset, n))
		if err := seq.End(); err != nil {
			return err
		}
		if err := seq.Submit(); err != nil {
			return err
		}
		src = src[n:]
		offset += n
	}
	for _, seq := range st.seqs {
		if err := seq.Wait(transferTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Download copies len(dst) bytes of src at offset into dst. The GPU must be
// done writing them (wait for the sequence that wrote them first).
func (d *Device) Download(src *Buffer, offset uint64, dst []byte) error {
	if err := d.usable(); err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	if err := src.Slice(offset, uint64(len(dst))).check("download"); err != nil {
		return err
	}
	if d.direct(src) {
		copy(dst, src.Mapped()[offset:])
		return nil
	}
	d.stagingMu.Lock()
	defer d.stagingMu.Unlock()
	st, err := d.stagingLocked()
	if err != nil {
		return err
	}
	seq := st.seqs[0]
	for len(dst) > 0 {
		n := min(uint64(len(dst)), st.half)
		if err := seq.Begin(); err != nil {
			return err
		}
		seq.Copy(src.Slice(offset, n), st.buf.Slice(0, n))
		if err := seq.End(); err != nil {
			return err
		}
		if err := seq.Run(transferTimeout); err != nil {
			return err
		}
		copy(dst, st.buf.Mapped()[:n])
		dst = dst[n:]
		offset += n
	}
	return nil
}
