{{/* Common labels. */}}
{{- define "postgres.labels" -}}
app.kubernetes.io/name: postgres
{{ include "postgres.selectorLabels" . }}
{{- end }}

{{/* Selector labels. */}}
{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
