package controller

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// imageStore keeps the scheduler's outcomes as ImageReports: the state a
// restarted operator starts from.
type imageStore struct {
	c         client.Client
	reader    client.Reader
	budget    int
	serverURL string
	metrics   *scanner.Metrics
}

func (s *imageStore) ScannedAt(ctx context.Context, digest string) (time.Time, bool, bool, error) {
	var r v1alpha1.ImageReport
	if err := s.reader.Get(ctx, client.ObjectKey{Name: reports.ImageName(digest)}, &r); err != nil {
		if apierrors.IsNotFound(err) {
			return time.Time{}, false, false, nil
		}
		return time.Time{}, false, false, err
	}
	if r.Report.Error == "" {
		s.metrics.Image(digest, r.Report.Summary)
	}
	return r.Report.ScannedAt.Time, r.Report.Error != "", true, nil
}

func (s *imageStore) Put(ctx context.Context, t scanner.Target, o *scanner.Outcome, scanErr error) error {
	var want *v1alpha1.ImageReport
	now := metav1.Now()
	if scanErr == nil {
		var err error
		in := reports.Image{Digest: t.Digest, Repository: t.Repository, Result: o.Result, ScannedAt: o.ScannedAt}
		if s.serverURL != "" {
			in.Server, in.ScanID = s.serverURL, o.ScanID
		}
		if want, err = reports.NewImageReport(in, s.budget); err != nil {
			return err
		}
		msg := "scanned by the operator"
		if o.Job != "" {
			msg = "scanned by Job " + o.Job + " (bulkhead image --server)"
		}
		if o.FromServer {
			msg = "taken from bulkhead server, which already held this digest"
		}
		meta.SetStatusCondition(&want.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionScanned, Status: metav1.ConditionTrue, Reason: "Scanned", Message: msg, LastTransitionTime: now})
		s.metrics.Image(t.Digest, want.Report.Summary)
	}
	for attempt := 0; ; attempt++ {
		var cur v1alpha1.ImageReport
		err := s.c.Get(ctx, client.ObjectKey{Name: reports.ImageName(t.Digest)}, &cur)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		next := want
		if scanErr != nil {
			// A failure keeps the last good findings and says why the
			// rescan failed.
			if exists {
				next = cur.DeepCopy()
			} else {
				next, _ = reports.NewImageReport(reports.Image{Digest: t.Digest, Repository: t.Repository}, s.budget)
			}
			next.Report.Error = truncate(scanErr.Error(), 1000)
			next.Report.ScannedAt = metav1.NewTime(now.UTC().Truncate(time.Second))
			reason := "ScanFailed"
			var r interface{ Reason() string }
			if errors.As(scanErr, &r) {
				reason = r.Reason()
			}
			meta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionScanned, Status: metav1.ConditionFalse, Reason: reason, Message: next.Report.Error, LastTransitionTime: now})
		}
		if exists {
			next.ResourceVersion = cur.ResourceVersion
			err = s.c.Update(ctx, next)
		} else {
			err = s.c.Create(ctx, next)
		}
		if err == nil || attempt == 2 || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			return err
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
