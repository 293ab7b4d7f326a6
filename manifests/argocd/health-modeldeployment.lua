-- Argo CD health check for ModelDeployment: keyed on kstatus conditions, not on phase strings.
-- Install under resource.customizations.health.modelops.dev_ModelDeployment in argocd-cm.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil then return hs end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
   and obj.status.observedGeneration < obj.metadata.generation then
  return hs
end
local message = obj.status.message or ""
local ready, stalled, degraded, reconciling
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then ready = c.status end
  if c.type == "Stalled" then stalled = c.status end
  if c.type == "Degraded" then degraded = c.status end
  if c.type == "Reconciling" then reconciling = c.status end
end
if degraded == "True" or stalled == "True" then
  return {status = "Degraded", message = message}
end
if ready == "True" and reconciling ~= "True" then
  return {status = "Healthy", message = message}
end
if obj.status.canary ~= nil and obj.status.canary.paused then
  return {status = "Suspended", message = message}
end
return {status = "Progressing", message = message}
