Gem::Specification.new do |s|
  s.name = "fixture-app"
  s.version = "1.2.0"
  s.summary = "the project itself"
  s.authors = ["bulkhead"]
  s.files = []
  s.add_dependency "rack", ">= 2.2"
  s.add_development_dependency "rack-test"
end
