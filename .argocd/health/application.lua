-- Health of an argoproj.io/Application, as the root Application sees its children.
-- Argo CD stopped assessing Application health in 1.8, and a resource without health counts as
-- healthy at once, so sync waves in an app of apps would order only the creation of the child
-- Applications. With this check the root waits, wave by wave, until each child reports Healthy:
-- sluice-admission (wave -1) must have every policy Ready before wave 0 is applied.
local hs = {}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end
if obj.status == nil or obj.status.health == nil or obj.status.health.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Argo CD to assess the application"
  return hs
end
hs.status = obj.status.health.status
hs.message = obj.status.health.message or ""
return hs
