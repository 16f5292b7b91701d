{{- define "bulkhead.name" -}}
{{- printf "%s" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "bulkhead.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: bulkhead
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of a component: (list . "server") */}}
{{- define "bulkhead.selector" -}}
app.kubernetes.io/name: bulkhead-{{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "bulkhead.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "bulkhead.serverURL" -}}
{{- if .Values.server.tls.existingSecret -}}https{{- else -}}http{{- end -}}://{{ include "bulkhead.name" . }}-server.{{ .Release.Namespace }}.svc:{{ .Values.server.port }}
{{- end -}}

{{/* The pod and container security context of Pod Security "restricted". */}}
{{- define "bulkhead.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "bulkhead.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "bulkhead.egressDNS" -}}
- to: [{namespaceSelector: {}}]
  ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
{{- end }}
{{- define "bulkhead.egressRegistries" -}}
- to:
  {{- range .Values.networkPolicy.registryCIDRs }}
  - ipBlock: {cidr: {{ . | quote }}}
  {{- end }}
  ports: [{protocol: TCP, port: 443}, {protocol: TCP, port: 80}]
{{- end }}
{{- define "bulkhead.egressServer" -}}
{{- if .Values.server.enabled }}
- to:
  - podSelector:
      matchLabels: {{- include "bulkhead.selector" (list . "server") | nindent 8 }}
  ports: [{protocol: TCP, port: {{ .Values.server.port }}}]
{{- end }}
{{- end }}
