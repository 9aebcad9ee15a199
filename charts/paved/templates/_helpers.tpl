{{/* Names, labels and the pieces several templates share. */}}

{{- define "paved.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, also the Service name (so at most 52 characters: room
     for the suffixes below and for "<name>.<namespace>.svc"). */}}
{{- define "paved.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if contains (include "paved.name" .) .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "paved.name" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paved.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "paved.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paved.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "paved.labels" -}}
helm.sh/chart: {{ include "paved.chart" . }}
{{ include "paved.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "paved.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "paved.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "paved.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The serving certificate's DNS names: the Service as the API server calls it. */}}
{{- define "paved.dnsNames" -}}
{{- $svc := include "paved.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end -}}

{{/* Secret names. */}}
{{- define "paved.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- .Values.tls.existingSecret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "paved.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "paved.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "paved.fullname" .)) .Values.apiTokens.existingSecret -}}
{{- end -}}

{{- define "paved.signingKeysSecretName" -}}
{{- default (printf "%s-signing-keys" (include "paved.fullname" .)) .Values.signingKeys.existingSecret -}}
{{- end -}}

{{- define "paved.hasTokenFiles" -}}
{{- range .Values.apiTokens.tokens -}}
{{- if not .sha256 }}yes{{ end -}}
{{- end -}}
{{- end -}}

{{/* tls.mode chart: the CA and serving pair, generated once per render and shared by
     the Secret, the webhook configurations and the pod's checksum (cached in the
     render's top-level context, which every template of the chart shares). An
     existing Secret is kept across upgrades. Values are base64. */}}
{{- define "paved.chartTLS" -}}
{{- if not (hasKey . "pavedChartTLS") -}}
{{- $data := dict -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "paved.tlsSecretName" .) -}}
{{- if $existing -}}
{{- if $existing.data -}}
{{- if and (hasKey $existing.data "ca.crt") (hasKey $existing.data "tls.crt") (hasKey $existing.data "tls.key") -}}
{{- $data = dict "ca.crt" (index $existing.data "ca.crt") "tls.crt" (index $existing.data "tls.crt") "tls.key" (index $existing.data "tls.key") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $data -}}
{{- $svc := include "paved.fullname" . -}}
{{- $cn := printf "%s.%s.svc" $svc .Release.Namespace -}}
{{- $days := int .Values.tls.chart.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $dns := list $svc (printf "%s.%s" $svc .Release.Namespace) $cn (printf "%s.cluster.local" $cn) -}}
{{- $cert := genSignedCert $cn nil $dns $days $ca -}}
{{- $data = dict "ca.crt" ($ca.Cert | b64enc) "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set . "pavedChartTLS" $data -}}
{{- end -}}
{{- toYaml (get . "pavedChartTLS") -}}
{{- end -}}

{{/* The webhook configurations' caBundle (base64 PEM), for the modes that need it. */}}
{{- define "paved.caBundle" -}}
{{- if eq .Values.tls.mode "chart" -}}
{{- index (include "paved.chartTLS" . | fromYaml) "ca.crt" -}}
{{- else if eq .Values.tls.mode "existingSecret" -}}
{{- .Values.tls.existingSecret.caBundle -}}
{{- end -}}
{{- end -}}

{{/* Annotations of the webhook configurations: cert-manager injects the CA. */}}
{{- define "paved.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "certManager" -}}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "paved.fullname" . }}-tls
{{- end -}}
{{- end -}}
