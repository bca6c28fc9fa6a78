package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

// GET /api/export/readings streams stored readings as CSV or NDJSON, the
// format `watchroom export` writes and `watchroom import` reads
// (docs/storage.md). The response is never held in memory: a goroutine runs
// the query and encodes each row into a pipe that fasthttp drains into a
// chunked response, so memory is a few buffers whatever the range.

const (
	// minRoleToExport may export: viewers see charts, bulk copies of the
	// raw history are for operators and admins.
	minRoleToExport = model.RoleOperator
	// maxConcurrentExports bounds the exports running at once: each holds
	// a pool connection for as long as its client reads, and the pool
	// (8 by default) also serves ingest.
	maxConcurrentExports = 2
	// exportStallTimeout ends an export whose client has read nothing for
	// that long, so that a client that stops reading without closing its
	// connection does not hold a slot and a pool connection forever. It
	// counts only the time the server waits for the client to take bytes
	// it has, never the time it waits for the database (a busy machine).
	exportStallTimeout = time.Minute
	// exportQueryStallTimeout ends an export whose query has sent nothing
	// for that long (a database connection that died without a reset
	// never ends otherwise).
	exportQueryStallTimeout = 5 * time.Minute
	// exportBuffer is what the encoder gathers before it hands bytes to
	// the response, and so the largest export that can still fail with a
	// JSON error instead of a cut-off body.
	exportBuffer = 32 << 10
)

// Results of watchroom_exports_total.
const (
	exportOK      = "ok"
	exportBusy    = "busy"        // refused: maxConcurrentExports running
	exportGone    = "client_gone" // the client closed the connection
	exportStalled = "stalled"     // the client stopped reading
	exportFailed  = "failed"      // the query failed or stalled
)

// errExportStalled ends the body of an export whose client stopped
// reading; errExportQueryStalled one whose query stopped sending.
var (
	errExportStalled      = errors.New("export: client read nothing for " + exportStallTimeout.String())
	errExportQueryStalled = errors.New("export: the database sent nothing for " + exportQueryStallTimeout.String())
)

type exporter struct {
	slots   chan struct{}
	results *prometheus.CounterVec
	rows    prometheus.Counter
}

func (a *App) exportRoutes(api fiber.Router) {
	a.export = &exporter{
		slots: make(chan struct{}, maxConcurrentExports),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchroom_exports_total", Help: "Exports of GET /api/export/readings by result."}, []string{"result"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchroom_export_rows_total", Help: "Readings written by GET /api/export/readings."}),
	}
	a.cfg.Registerer.MustRegister(a.export.results, a.export.rows)
	for _, r := range []string{exportOK, exportBusy, exportGone, exportStalled, exportFailed} {
		a.export.results.WithLabelValues(r)
	}
	api.Get("/export/readings", a.getExportReadings)
}

func (a *App) getExportReadings(c *fiber.Ctx) error {
	if cl := claimsOf(c); !cl.Role.AtLeast(minRoleToExport) {
		a.reject(reasonForbidden, "route", "export", "user", cl.User)
		return apiError(fiber.StatusForbidden, "forbidden",
			"exporting readings needs role "+string(minRoleToExport)+" or above; you are "+string(cl.Role))
	}
	var filter [2]string
	for i, name := range []string{"sensor_id", "metric"} {
		if v := c.Query(name); v != "" {
			if err := model.ValidID(v); err != nil {
				return apiError(fiber.StatusBadRequest, "bad_request", name+": "+err.Error())
			}
			filter[i] = v
		}
	}
	from, err := timeParam(c, "from", store.ExportFrom)
	if err != nil {
		return err
	}
	to, err := timeParam(c, "to", store.ExportTo)
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return apiError(fiber.StatusBadRequest, "bad_request", "from must be before to")
	}
	format := c.Query("format", store.FormatCSV)
	contentType := map[string]string{store.FormatCSV: "text/csv; charset=utf-8", store.FormatNDJSON: "application/x-ndjson"}[format]
	if contentType == "" {
		return apiError(fiber.StatusBadRequest, "bad_request", "format must be csv or ndjson")
	}

	select {
	case a.export.slots <- struct{}{}:
	default:
		a.export.results.WithLabelValues(exportBusy).Inc()
		return apiError(fiber.StatusTooManyRequests, "rate_limited", "too many exports running; try again when one has finished")
	}
	// Not the request's context: the export outlives the handler, and ends
	// when the body is closed (done, client gone or stalled).
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.UserContext()))
	pr, pw := io.Pipe()
	body := &exportBody{pr: pr, br: bufio.NewReaderSize(pr, exportBuffer), cancel: cancel}
	go a.runExport(ctx, pw, body, filter[0], filter[1], from, to, format)

	// Wait for the first buffer (or the end): an export that fails before
	// sending anything answers with a JSON error, not a 200 with a cut-off
	// body. A failure after that aborts the chunked response, so the
	// client sees a broken transfer, never a short file that looks whole.
	if _, err := body.br.Peek(1); err != nil && !errors.Is(err, io.EOF) {
		_ = body.Close()
		// runExport logged it.
		return apiError(fiber.StatusInternalServerError, "internal", "export failed")
	}
	body.startTimers(exportStallTimeout, exportQueryStallTimeout)

	name := "readings"
	for _, f := range filter {
		if f != "" {
			name += "-" + f // ValidID: letters, digits, - _ . only
		}
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+"."+map[string]string{store.FormatCSV: "csv", store.FormatNDJSON: "ndjson"}[format]+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendStream(body, -1) // -1: chunked; fasthttp closes body when done or on error
}

// runExport runs on its own goroutine: it writes the export into pw and
// closes it, with the error that ended it if any. It frees the slot.
func (a *App) runExport(ctx context.Context, pw *io.PipeWriter, body *exportBody, sensorID, metric string, from, to time.Time, format string) {
	defer func() { <-a.export.slots }()
	bw := bufio.NewWriterSize(pw, exportBuffer)
	n := 0
	enc, err := store.NewReadingEncoder(bw, format)
	if err == nil {
		err = a.cfg.Store.ExportReadings(ctx, sensorID, metric, from, to, func(r model.Reading) error {
			n++
			return enc(r)
		})
	}
	if err == nil {
		err = bw.Flush()
	}
	a.export.rows.Add(float64(n))
	result := exportOK
	switch {
	case err == nil:
	case errors.Is(body.cause(), errExportStalled):
		result = exportStalled
		a.cfg.Log.Warn("export ended: the client stopped reading", "rows", n)
	case errors.Is(body.cause(), errExportQueryStalled):
		result = exportFailed
		a.cfg.Log.Error("export failed", "rows", n, "err", errExportQueryStalled)
	case body.closed.Load():
		result = exportGone
	default:
		result = exportFailed
		a.cfg.Log.Error("export failed", "rows", n, "err", err)
	}
	a.export.results.WithLabelValues(result).Inc()
	_ = pw.CloseWithError(err) // nil: the reader sees EOF
}

// exportBody is the response body of an export: the pipe's read end,
// buffered once the first bytes are in. Close (by fasthttp, after the last
// byte or on a write error) and the stall timers end the export.
type exportBody struct {
	pr     *io.PipeReader
	br     *bufio.Reader // over pr
	cancel context.CancelFunc
	// Set before fasthttp reads; nil while the handler peeks. stall runs
	// while fasthttp holds bytes Read returned (it is writing them to the
	// client), queryStall while Read waits for the query's next bytes.
	stall, queryStall           *time.Timer
	stallAfter, queryStallAfter time.Duration
	closed                      atomic.Bool
	err                         atomic.Pointer[error] // why it was aborted
}

// startTimers arms the stall timer (the client has stallAfter to start
// reading) and makes the query's; before fasthttp reads.
func (b *exportBody) startTimers(stallAfter, queryStallAfter time.Duration) {
	b.stallAfter, b.queryStallAfter = stallAfter, queryStallAfter
	b.queryStall = time.AfterFunc(queryStallAfter, func() { b.abort(errExportQueryStalled) })
	b.queryStall.Stop()
	b.stall = time.AfterFunc(stallAfter, func() { b.abort(errExportStalled) })
}

// Read is called by fasthttp's response writer only, one call at a time.
func (b *exportBody) Read(p []byte) (int, error) {
	if b.stall == nil {
		return b.br.Read(p)
	}
	// Back for more: the client took the previous bytes (they are in the
	// socket). Waiting for the database is not the client's stall: an
	// export on a loaded machine that the client reads as fast as it
	// comes must not be cut off as stalled.
	b.stall.Stop()
	b.queryStall.Reset(b.queryStallAfter)
	n, err := b.br.Read(p)
	b.queryStall.Stop()
	b.stall.Reset(b.stallAfter)
	return n, err
}

func (b *exportBody) abort(err error) {
	b.err.CompareAndSwap(nil, &err)
	b.cancel()
	_ = b.pr.CloseWithError(err)
}

func (b *exportBody) cause() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *exportBody) Close() error {
	b.closed.Store(true)
	if b.stall != nil {
		b.stall.Stop()
		b.queryStall.Stop()
	}
	b.cancel()
	return b.pr.Close()
}
