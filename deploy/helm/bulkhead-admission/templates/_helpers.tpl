{{- define "bulkhead-admission.name" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bulkhead-admission.labels" -}}
app.kubernetes.io/name: bulkhead-admission
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bulkhead-admission.selector" -}}
app.kubernetes.io/name: bulkhead-admission
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bulkhead-admission.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "bulkhead-admission.tlsSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "bulkhead-admission.name" .)) -}}
{{- end -}}
