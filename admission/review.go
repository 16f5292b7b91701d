// Package admission is bulkhead's Kubernetes ValidatingAdmissionWebhook: it
// answers admission.k8s.io/v1 AdmissionReview requests for Pods and the
// workload kinds (Deployments, StatefulSets, Jobs, ... judged through their
// pod template) with the decision of the same policy engine the CI gate
// uses (package policy), so a pod the gate passed is admitted and one it
// failed is not.
//
// The server resolves tags to digests, verifies signatures and
// attestations, looks up a cached scan by digest (scanning on a miss within
// the policy's scan budget), runs the Pod Security and workload checks, and
// answers allow or deny with the rules' messages (warnings for warn rules).
// It serves /healthz, /readyz and Prometheus /metrics, logs every decision
// as JSON (log/slog), and reloads the policy file and the TLS certificate
// when they change on disk (polling: ConfigMap and Secret volumes are
// updated through symlink swaps that file watchers miss).
package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
)

// MaxBodySize bounds a request body: the API server itself refuses objects
// over 3 MiB, so anything larger is not a genuine review.
const MaxBodySize = 3 << 20

// RequestError is a request the webhook cannot judge; Status is the HTTP
// status to answer with (always 4xx).
type RequestError struct {
	Status int
	Err    error
}

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

func badRequest(status int, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Err: fmt.Errorf(format, args...)}
}

// DecodeRequest reads an AdmissionReview from an HTTP request: POST,
// Content-Type application/json, at most MaxBodySize bytes, apiVersion
// admission.k8s.io/v1 with a request that has a uid.
func DecodeRequest(r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, badRequest(http.StatusMethodNotAllowed, "method %s: an AdmissionReview is POSTed", r.Method)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, badRequest(http.StatusUnsupportedMediaType, "content type %q: the API server sends application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, badRequest(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxBodySize)
		}
		return nil, badRequest(http.StatusBadRequest, "read request body: %v", err)
	}
	return DecodeReview(body)
}

// DecodeReview decodes and checks an AdmissionReview's JSON.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	if len(body) > MaxBodySize {
		return nil, badRequest(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxBodySize)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rev); err != nil {
		return nil, badRequest(http.StatusBadRequest, "decode AdmissionReview: %v", err)
	}
	if rev.APIVersion != "admission.k8s.io/v1" || rev.Kind != "AdmissionReview" {
		return nil, badRequest(http.StatusBadRequest, "apiVersion %q kind %q: want admission.k8s.io/v1 AdmissionReview (set admissionReviewVersions: [v1])", rev.APIVersion, rev.Kind)
	}
	if rev.Request == nil {
		return nil, badRequest(http.StatusBadRequest, "AdmissionReview without request")
	}
	if rev.Request.UID == "" {
		return nil, badRequest(http.StatusBadRequest, "AdmissionReview request without uid")
	}
	if rev.Response != nil {
		return nil, badRequest(http.StatusBadRequest, "AdmissionReview already has a response")
	}
	return &rev, nil
}
